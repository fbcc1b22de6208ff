"""``als4gan select``: choose which images to label under a budget (active learning)."""

from __future__ import annotations

import argparse

from als4gan.active.config import SelectConfig
from als4gan.commands.common import add_dataset_arguments
from als4gan.config import add_config_arguments

HELP = "choose which images to label under a budget (active learning)"
DESCRIPTION = """\
Choose which images of a split to label (stage 1 of docs/method.md). Budget
B = ceil(R x N) (or --budget); an initial random set of n0 = max(1, floor(alpha x B)) images, then
rounds of q = max(1, ceil(beta x n0)) images chosen by the strategy until exactly B are labelled.
Each round the acquisition model (an image classifier, or a segmentation network) is refitted
on the labelled images and scores the unlabelled pool. An interrupted selection resumes from
its last finished round when run again with the same options. For small budgets, typiclust and
probcover train no model: they choose all B images in one pass from the pool's pretrained
embeddings (cached); --strategy auto picks by budget (docs/selection.md).

Writes RUN_DIR/selection/: labeled.txt, unlabeled.txt, selection.json, config.yaml,
contact_sheet.png, labeled_names.npy (the reference code's list), timing.json.

--oracle masks (default) simulates labelling by reading the pool's masks. --oracle human asks a
person: each round writes RUN_DIR/selection/to_label.txt and an annotation package
(selection/round_<k>/: images, tasks.csv, label_studio.json), prints where to save the masks,
and exits with status 'waiting'; run the same command again once they are saved. --status RUN
says where a selection stands. Tutorial: docs/selection.md.

examples:
  als4gan prepare synthetic --out data/synthetic
  als4gan select --root data/synthetic --labeled-ratio 0.05 --strategy entropy \\
      --model resnet18 --epochs 10 --image-size 128 --out runs/entropy5
  als4gan select --root data/synthetic --budget 20 --strategy random --out runs/random20
  als4gan select --dataset folder --root data/pool --budget 20 --oracle human --out runs/pool
  als4gan select --status runs/pool
  als4gan select --root data/synthetic --labeled-ratio 0.03 --strategy typiclust \\
      --model mobilenet_v2 --pretrained imagenet --image-size 128 --out runs/typiclust3
  als4gan select --root data/synthetic --labeled-ratio 0.1 --acquisition segmentation \\
      --strategy hybrid --reduction class-balanced --epochs 5 --image-size 128 --out runs/seg
"""

#: Dataset flags whose defaults must not hide values from --config (see add_arguments).
_DATASET_FLAGS = ("dataset", "root", "split", "classes_file", "bands")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset flags, selection options (from :class:`SelectConfig`) and run-folder flags."""
    add_dataset_arguments(parser)
    # A flag's default must not override a --config file: only explicit flags count.
    for action in parser._actions:
        if action.dest in _DATASET_FLAGS:
            action.default = argparse.SUPPRESS
    add_config_arguments(parser, SelectConfig, title="selection")
    group = parser.add_argument_group("run folder")
    group.add_argument("--out", default=None, help="run folder; writes RUN_DIR/selection/")
    group.add_argument("--config", default=None, help="YAML file of options (flags override it)")
    group.add_argument(
        "--force", action="store_true", help="redo a finished selection in --out (overwrites it)"
    )
    group.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue an interrupted selection in --out (default); --no-resume starts over",
    )
    group.add_argument(
        "--oracle",
        choices=("masks", "human"),
        default="masks",
        help="who labels the chosen images: 'masks' (default) simulates it from the pool's "
        "masks; 'human' stops after each round until a person saves the masks (docs/selection.md)",
    )
    group.add_argument(
        "--initial",
        default=None,
        metavar="FILE",
        help="ids of the initial set, one per line, instead of a random draw (its size replaces "
        "n0; e.g. images you have already labelled)",
    )
    group.add_argument(
        "--status",
        default=None,
        metavar="RUN_DIR",
        help="only say where the selection in RUN_DIR stands (round, labelled, ids waiting)",
    )


def _continue_command(args: argparse.Namespace) -> str:
    """The command line that continues a waiting selection (this one, as typed)."""
    import shlex
    import sys

    typed = getattr(args, "_argv", None)
    return shlex.join(["als4gan", *(sys.argv[1:] if typed is None else typed)])


def run(args: argparse.Namespace) -> int:
    """Resolve the options, run the selection and print where it went."""
    from als4gan.config import resolve_config
    from als4gan.errors import ConfigError
    from als4gan.runlock import claim_folder
    from als4gan.stages.select import select, selection_status

    if args.status is not None:
        print(selection_status(args.status))
        return 0
    if args.out is None:
        raise ConfigError("--out is required: the run folder (or --status RUN_DIR)")
    claim_folder(args.out)
    config = resolve_config(SelectConfig, args, args.config)
    result = select(
        config,
        args.out,
        force=args.force,
        resume=args.resume,
        oracle=args.oracle,
        initial=args.initial,
        command=_continue_command(args),
    )
    if result.message:  # empty in the other processes of a torchrun job
        print(result.message)
    return 0
