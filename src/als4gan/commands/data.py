"""``als4gan data``: inspect a dataset split (class shares, image labels, bad files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from als4gan.commands.common import add_dataset_arguments

HELP = "print per-class pixel shares and label counts of a split, flagging bad files"
DESCRIPTION = """\
Inspect a dataset split.

  als4gan data stats --dataset deepglobe --root data/deepglobe_512 --split all
  als4gan data stats --dataset synthetic --root data/synthetic --split train --json stats.json

'stats' reads every sample of the split once (streaming, with a progress bar), prints the
per-class pixel shares, the image-level label counts and the channel mean/std, and lists every
sample it could not use (corrupt or truncated file, image/mask size mismatch, mask value or
colour outside the class table) instead of stopping at the first. Exit status: 0 when all
samples were read, 1 when some could not be (or, with --strict, when a dataset also had to map
unmatched pixels to ignore), 2 when the dataset itself cannot be opened.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-command ``stats``."""
    sub = parser.add_subparsers(dest="data_command", metavar="<action>", required=True)
    stats = sub.add_parser(
        "stats",
        help="class pixel shares, image-level label counts and problems of a split",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_arguments(stats, split_default="train")
    from als4gan.argtypes import image_max_arg

    stats.add_argument(
        "--image-max",
        type=image_max_arg,
        default=None,
        help="folder datasets: pixel value that maps to 1.0 (default: recorded by 'prepare')",
    )
    stats.add_argument(
        "--json", default=None, metavar="FILE", help="also write the figures as JSON"
    )
    stats.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes reading samples (default: CPUs - 1; 0 = none)",
    )
    stats.add_argument(
        "--strict",
        action="store_true",
        help="also exit 1 when pixels matched no class colour and were set to ignore",
    )


def run(args: argparse.Namespace) -> int:
    """Compute, print and optionally save the statistics."""
    from als4gan.commands.common import dataset_options, require_root
    from als4gan.data import build_dataset
    from als4gan.data.stats import compute_stats, format_stats
    from als4gan.io import write_json
    from als4gan.runtime import default_num_workers

    root = require_root(args)
    if args.json and Path(args.json).is_dir():
        from als4gan.errors import ConfigError

        raise ConfigError(f"--json {args.json} is a folder; give a file name, e.g. stats.json")
    dataset = build_dataset(args.dataset, root, args.split, **dataset_options(args))
    workers = default_num_workers() if args.workers is None else max(0, args.workers)
    stats = compute_stats(dataset, workers=min(workers, len(dataset)))
    print(format_stats(stats))
    if args.json:
        write_json(args.json, stats)
        print(f"\nwrote {args.json}")
    if stats["problems"] or (args.strict and stats["warnings"]):
        return 1
    return 0
