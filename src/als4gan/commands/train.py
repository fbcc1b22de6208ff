"""``als4gan train``: train a segmentation network (s4GAN semi-supervised or supervised-only)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any

HELP = "train a segmentation network (s4GAN semi-supervised or supervised-only)"
DESCRIPTION = """\
Train DeepLab with s4GAN (labelled + unlabelled images, stage 2 of docs/method.md) or the supervised
baseline (labelled images only). Defaults are the paper's (docs/method.md); the resolved options are
written to RUN_DIR/config.yaml, checkpoints to RUN_DIR/checkpoints/{latest,best}.pt and one
record per step to RUN_DIR/metrics.jsonl.

  als4gan train --root data/synthetic --selection runs/a/selection --out runs/a \\
      --backbone resnet18 --crop-size 96 --batch-size 4 --iterations 500 --val-every 100
  als4gan train --root data/synthetic --labeled-ratio 0.05 --seed 1 --method supervised \\
      --out runs/sup --backbone resnet18 --iterations 500
  als4gan train --out runs/a --resume                 # continue an interrupted run exactly
  torchrun --nproc_per_node 4 -m als4gan train ...     # several GPUs (DDP)

With no --selection or --labeled-ratio, RUN_DIR/selection/labeled.txt (written by
'als4gan select --out RUN_DIR') is used. No weights are downloaded: for real work pass
ImageNet weights with --pretrained FILE (see docs/training.md).
"""

logger = logging.getLogger("als4gan.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset flags, every TrainConfig option (grouped), and run-folder flags."""
    from als4gan.commands.common import add_dataset_arguments
    from als4gan.config import add_config_arguments
    from als4gan.train.config import GROUPS, TrainConfig

    add_dataset_arguments(parser, split_default="train")
    # None = "not given", so that --config and a resumed run's config.yaml can supply them.
    parser.set_defaults(dataset=None, split=None)
    run = parser.add_argument_group("run folder")
    run.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in RUN_DIR from checkpoints/latest.pt",
    )
    run.add_argument(
        "--force", action="store_true", help="start over, replacing a run already in RUN_DIR"
    )
    run.add_argument(
        "--config", metavar="FILE", help="YAML of options (e.g. another run's config.yaml)"
    )
    names = [field.name for field in dataclasses.fields(TrainConfig)]
    for title, group in GROUPS.items():
        add_config_arguments(
            parser, TrainConfig, exclude=[n for n in names if n not in group], title=title
        )


def _explicit_values(args: argparse.Namespace) -> dict[str, Any]:
    """Options given on the command line (config fields and the dataset flags)."""
    from als4gan.train.config import DATASET_FIELDS, TrainConfig

    names = {field.name for field in dataclasses.fields(TrainConfig)}
    values = {key: value for key, value in vars(args).items() if key in names}
    for key in DATASET_FIELDS:
        if getattr(args, key, None) is None:
            values.pop(key, None)
    return values


def _resolve(args: argparse.Namespace) -> Any:
    """The config of this invocation (a resumed run: its saved config plus allowed changes)."""
    from als4gan.config import resolve_config
    from als4gan.errors import ConfigError
    from als4gan.stages.train import resumed_config
    from als4gan.train.config import TrainConfig

    explicit = _explicit_values(args)
    if not args.resume:
        return resolve_config(TrainConfig, argparse.Namespace(**explicit), args.config)
    if args.force:
        raise ConfigError("give --resume (continue) or --force (start over), not both")
    if args.config:
        raise ConfigError("--resume reads RUN_DIR/config.yaml; --config cannot be combined with it")
    return resumed_config(args.out, explicit)


def run(args: argparse.Namespace) -> int:
    """Resolve the config, train into RUN_DIR, and print how it went."""
    from als4gan.runlock import claim_folder
    from als4gan.stages.train import train

    claim_folder(args.out)  # before reading its state: no other process may be writing it
    result = train(_resolve(args), args.out, resume=args.resume, force=args.force)
    if result.message:
        print(result.message)
    return 130 if result.state == "stopped" and result.stopped_by_signal else 0
