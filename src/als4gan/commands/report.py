"""``als4gan report``: build one self-contained HTML report from one or more run folders."""

from __future__ import annotations

import argparse

HELP = "build one self-contained HTML report from one or more run folders"
DESCRIPTION = """\
Build one HTML page (every image embedded, no external files) from run folders. It opens
with the comparison across runs: "did active learning help?" (each strategy against random
and each method against supervised, paired by seed: mean difference, 95% confidence
interval, wins, in plain words), per-class IoU across runs, the classes of the chosen images
against the pool's, and the same evaluated images predicted by each run (read from their eval/
folders). Then, per run: training loss and validation-mIoU curves, per-class IoU, confusion
matrix, the images chosen for labelling, the prediction examples of its evaluation, the
resolved configuration. The report only reads run folders: it runs no model. Parts a run
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
        help="prediction examples shown per run, read from eval/<split>/examples/ (written by "
        "'als4gan evaluate'); 0 = none (default: 3)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing .html file that is not an als4gan report",
    )


def run(args: argparse.Namespace) -> int:
    """Write the report."""
    from als4gan.stages.report import ReportConfig, report

    config = ReportConfig(title=args.title, examples=args.examples)
    print(report(args.runs, args.out, config, force=args.force).message)
    return 0
