"""The self-contained HTML report, built from the files of run folders (drawing: als4gan.draw)."""

from __future__ import annotations

from als4gan.report.html import ReportOptions, build_report, render_report
from als4gan.report.runs import RunInfo, load_run, load_runs

__all__ = ["ReportOptions", "RunInfo", "build_report", "load_run", "load_runs", "render_report"]
