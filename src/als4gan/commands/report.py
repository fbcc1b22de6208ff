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
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing .html file that is not an als4gan report",
    )


#: Suffixes a report file may have: anything else could be a run artefact (a checkpoint...).
REPORT_SUFFIXES = (".html", ".htm")


def is_previous_report(path: Path) -> bool:
    """Whether ``path`` is a page written by ``als4gan report`` (its generator tag)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(2048)
    except OSError:
        return False
    return b'<meta name="generator" content="als4gan' in head


def check_report_out(out: Path, force: bool) -> None:
    """Refuse an --out that would destroy something other than an earlier report.

    A report never writes over a file without the ``.html`` suffix (checkpoints, metrics and
    configurations of a run, whatever ``--force`` says), never over a folder, and over an
    existing ``.html`` file only when it is an earlier report or ``--force`` is given.

    Raises:
        ConfigError: If ``out`` is a folder or lacks the ``.html`` suffix.
        RunExistsError: If ``out`` is another HTML file and ``force`` is false.
    """
    from als4gan.errors import ConfigError, RunExistsError

    if out.is_dir():
        raise ConfigError(
            f"--out {out} is a folder; give the report's file name, e.g. {out / 'report.html'}"
        )
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise ConfigError(
            f"--out {out} must end in .html: a report is never written over other files "
            "(checkpoints, metrics, configurations of a run)"
        )
    if out.exists() and not force and not is_previous_report(out):
        raise RunExistsError(
            f"--out {out} exists and is not an als4gan report; pass --force to replace it, or "
            "choose another file name"
        )


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
    check_report_out(out, args.force)
    options = ReportOptions(
        title=args.title, examples=max(0, args.examples), device=args.device, window=args.window
    )
    path = build_report(args.runs, out, options)
    size = path.stat().st_size / 1e6
    print(f"report of {len(args.runs)} run(s) -> {path} ({size:.1f} MB)")
    return 0
