"""The report stage: one self-contained HTML page from run folders, never over a run's files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from als4gan.config import option
from als4gan.stages import releasing_folders

#: Suffixes a report file may have: anything else could be a run artefact (a checkpoint...).
REPORT_SUFFIXES = (".html", ".htm")


@dataclass
class ReportConfig:
    """Options of ``als4gan report`` (besides the run folders and ``--out``)."""

    title: str = option("ALS4GAN report", "page title")
    examples: int = option(3, "prediction examples shown per run, from its eval/ folder")


@dataclass
class ReportResult:
    """The written report: its path, size and the line ``als4gan report`` prints."""

    path: Path
    runs: int
    megabytes: float

    @property
    def message(self) -> str:
        """``report of N run(s) -> PATH (S MB)``."""
        return f"report of {self.runs} run(s) -> {self.path} ({self.megabytes:.1f} MB)"


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


def default_report_path(runs: Sequence[str | Path]) -> Path:
    """``RUN_DIR/report.html`` for one run, else ``report.html`` in the current directory."""
    return Path(runs[0]) / "report.html" if len(runs) == 1 else Path("report.html")


@releasing_folders()
def report(
    runs: Sequence[str | Path],
    out: str | Path | None = None,
    config: ReportConfig | None = None,
    *,
    force: bool = False,
) -> ReportResult:
    """Build one HTML report (every image embedded) from run folders.

    Args:
        runs: Run folders (of ``train``, ``select``, ``evaluate`` or ``run``'s cells).
        out: HTML file to write (default: see :func:`default_report_path`).
        config: Title, example predictions, window, device (default: :class:`ReportConfig`).
        force: Replace an existing ``.html`` file that is not an als4gan report.

    Returns:
        The report's path and size.

    Raises:
        DatasetNotFoundError: If a run folder does not exist.
        ConfigError / RunExistsError: For an ``out`` that is not a report file (see
            :func:`check_report_out`).
    """
    from als4gan.errors import DatasetNotFoundError
    from als4gan.report import ReportOptions, build_report

    config = config or ReportConfig()
    for folder in runs:
        if not Path(folder).is_dir():
            raise DatasetNotFoundError(f"run folder {folder} does not exist")
    target = Path(out) if out else default_report_path(runs)
    check_report_out(target, force)
    options = ReportOptions(
        title=config.title,
        examples=max(0, config.examples),
    )
    path = build_report([str(run) for run in runs], target, options)
    return ReportResult(path, len(runs), path.stat().st_size / 1e6)
