"""``als4gan evaluate``: score a checkpoint on a split (mIoU, per-class IoU/F1, confusion)."""

from __future__ import annotations

import argparse

from als4gan.config import add_config_arguments, resolve_config
from als4gan.stages.evaluate import EvaluateConfig

HELP = "score a checkpoint on a split (mIoU, per-class IoU/F1, confusion matrix)"
DESCRIPTION = """\
Score a trained checkpoint on a dataset split. Metrics come from one confusion matrix over the
whole split at label resolution: pixel accuracy, mean class accuracy, mIoU, frequency-weighted
IoU, per-class IoU and F1 (the ignore label is skipped). Images larger than the window are
predicted with overlapping sliding windows whose overlaps are blended.

Writes RUN_DIR/eval/<split>/metrics.json, metrics.md, confusion_matrix.png and prediction
examples (examples.json, examples/: three images of the split with their truth and prediction,
which 'als4gan report' shows) (or into --out).
Dataset options default to those recorded in the checkpoint / run folder.

Images are segmented the way validation did during training (the window and overlap recorded
in the checkpoint: whole images with 'train --val-window 0', else sliding windows of the
validation window, by default the training crop), so the test split is scored the way best.pt
was chosen. --window / --overlap override that, with a warning.

--all-checkpoints scores every RUN_DIR/checkpoints/*.pt on the validation split, keeps the best
one there and evaluates only that one on --split (the test split is never used for choosing).

examples:
  als4gan evaluate --checkpoint runs/s4gan --split test
  als4gan evaluate --checkpoint runs/s4gan/checkpoints/best.pt --dataset synthetic \\
      --root data/synthetic --split test --out eval/s4gan
  als4gan evaluate --checkpoint runs/s4gan --all-checkpoints --split test
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``evaluate``."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="CKPT",
        help="checkpoint file, or a run folder (uses RUN_DIR/checkpoints/best.pt)",
    )
    data = parser.add_argument_group("dataset (default: as recorded in the checkpoint)")
    from als4gan.commands.common import DATASET_NAMES

    data.add_argument("--dataset", default=None, choices=DATASET_NAMES, help="dataset format")
    data.add_argument("--root", default=None, help="dataset root folder")
    data.add_argument("--classes-file", default=None, help="folder datasets: YAML/JSON class table")
    from als4gan.argtypes import image_max_arg

    data.add_argument(
        "--bands",
        type=int,
        nargs="+",
        default=None,
        help="folder datasets: 1-based bands (default and only accepted value: the recorded ones)",
    )
    data.add_argument(
        "--image-max",
        type=image_max_arg,
        default=None,
        help=(
            "folder datasets: pixel value that maps to 1.0 (default and only accepted value: "
            "the one recorded in the checkpoint)"
        ),
    )
    add_config_arguments(parser, EvaluateConfig, title="evaluation")
    parser.add_argument("--config", default=None, help="YAML file with evaluation options")
    parser.add_argument("--out", default=None, help="output folder (default: RUN_DIR/eval/<split>)")
    parser.add_argument(
        "--force", action="store_true", help="overwrite a finished evaluation of this split"
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the metrics files."""
    from als4gan.commands.common import dataset_options
    from als4gan.stages.evaluate import evaluate

    config = resolve_config(EvaluateConfig, args, args.config)
    result = evaluate(
        args.checkpoint,
        config,
        dataset=args.dataset,
        root=args.root,
        dataset_options=dataset_options(args),
        out=args.out,
        force=args.force,
    )
    print(result.message)
    return 0
