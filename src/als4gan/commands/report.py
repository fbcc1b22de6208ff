"""``als4gan report``: build one self-contained HTML report from one or more run folders."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "build one self-contained HTML report from one or more run folders"
DESCRIPTION = """\
Build one HTML page (every image embedded, no external files) from run folders. It opens
with the comparison across runs: "did active learning help?" (each strategy against random
and each method against supervised, paired by seed: mean difference, 95% confidence
interval, wins, in plain words), per-class IoU across runs, the classes of the chosen images
against the pool's, and the same validation images predicted by each run. Then, per run:
training loss and validation-mIoU curves, per-class IoU, confusion matrix, the images chosen
for labelling, predictions of the best checkpoint, the resolved configuration. Parts a run
lacks (no evaluation yet, no selection for a random-subset run...) are named in the page.

examples:
  als4gan report runs/entropy_s4gan --out runs/entropy_s4gan/report.html
  als4gan report runs/*_seed* --out comparison.html --title "entropy vs random, 5 %"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``report``."""
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders")
    parser.add_argument(
        "--out",
        default=None,
        help="HTML file to write (default: RUN_DIR/report.html for one run, else report.html)",
    )
    parser.add_argument("--title", default="ALS4GAN report", help="page title")
    parser.add_argument(
        "--examples",
        type=int,
        default=3,
        help="validation images predicted per run with its best checkpoint; 0 = none (default: 3)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=None,
        help="sliding-window side for those predictions (default: the training crop)",
    )
    parser.add_argument("--device", default="auto", help="torch device for the predictions")


def run(args: argparse.Namespace) -> int:
    """Write the report."""
    from als4gan.errors import DatasetNotFoundError
    from als4gan.report import ReportOptions, build_report

    for folder in args.runs:
        if not Path(folder).is_dir():
            raise DatasetNotFoundError(f"run folder {folder} does not exist")
    if args.out:
        out = Path(args.out)
    elif len(args.runs) == 1:
        out = Path(args.runs[0]) / "report.html"
    else:
        out = Path("report.html")
    options = ReportOptions(
        title=args.title, examples=max(0, args.examples), device=args.device, window=args.window
    )
    path = build_report(args.runs, out, options)
    size = path.stat().st_size / 1e6
    print(f"report of {len(args.runs)} run(s) -> {path} ({size:.1f} MB)")
    return 0
