"""The self-contained HTML report: one page, plots embedded as data URIs, no external assets.

The page is rendered from Jinja2 templates (``als4gan/report/templates/``, autoescaped). It
opens with the sections comparing runs (:mod:`als4gan.report.crossrun`), then an overview and
a table of every run, then one card per run (:mod:`als4gan.report.sections`). The report only
reads run folders: the prediction examples it shows were written by ``als4gan evaluate``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from als4gan import __version__
from als4gan.draw import plots
from als4gan.io import atomic_write_text, utc_now
from als4gan.report.render import data_uri, guard, pct, render, slug
from als4gan.report.runs import (
    Group,
    RunInfo,
    featured_split,
    group_by_condition,
    load_runs,
    metric_label,
    run_value,
)
from als4gan.report.sections import (
    RUN_SECTIONS,
    SHEET_LIMIT,
    section_config,
    section_confusion,
    section_curves,
    section_per_class,
    section_predictions,
    section_selection,
)

__all__ = [
    "RUN_SECTIONS",
    "SHEET_LIMIT",
    "ReportOptions",
    "build_report",
    "comparison_section",
    "data_uri",
    "pct",
    "render_report",
    "run_section",
    "section_config",
    "section_confusion",
    "section_curves",
    "section_per_class",
    "section_predictions",
    "section_selection",
    "slug",
]


@dataclass
class ReportOptions:
    """What the report shows.

    Attributes:
        title: Page title.
        examples: Prediction examples shown per run, read from ``eval/<split>/examples/``
            (written by ``als4gan evaluate``; 0 = none).
    """

    title: str = "ALS4GAN report"
    examples: int = 3


def run_section(run: RunInfo, options: ReportOptions) -> Markup:
    """The card of one run with all its sections."""
    from als4gan.report import sections

    return sections.run_section(run, options.examples)


# --------------------------------------------------------------------------- comparison
def _run_row(run: RunInfo, splits: Sequence[str]) -> dict[str, Any]:
    """One row of the table of every run."""
    iterations = run.config.get("iterations")
    last_step = run.train[-1]["step"] if run.train else None
    iters = (
        f"{last_step}/{iterations}"
        if last_step and iterations and last_step != iterations
        else iterations or last_step or "–"
    )
    scores = []
    for split in splits:
        metrics = run.evals.get(split, {})
        scores += [pct(metrics.get("miou"), 2), pct(metrics.get("pixel_accuracy"), 2)]
    return {
        "name": run.name,
        "method": run.config.get("method", "–"),
        "backbone": run.config.get("backbone", "–"),
        "labelled": run.labelled_description(),
        "seed": run.seed if run.seed is not None else "–",
        "iterations": iters,
        "best": run.best_val,
        "scores": scores,
    }


def _group_row(group: Group) -> dict[str, Any]:
    """One row of the table of seed groups."""
    seeds = ", ".join(str(run.seed) for run in group.runs if run.seed is not None) or "–"
    return {
        "label": group.label,
        "runs": len(group.runs),
        "seeds": seeds,
        "n": len(group.values),
        "mean": group.mean if group.values else math.nan,
        "spread": group.spread if len(group.values) > 1 else math.nan,
        "low": min(group.values) if group.values else math.nan,
        "high": max(group.values) if group.values else math.nan,
    }


def _comparison_charts(
    runs: Sequence[RunInfo], groups: Sequence[Group], label: str
) -> dict[str, Any]:
    """The bar chart of the groups and the overlaid validation curves (``None`` when empty)."""
    scored = [g for g in groups if g.values]
    group_chart = (
        plots.group_bars_png(
            [g.label for g in scored],
            [g.mean for g in scored],
            [g.spread for g in scored],
            [len(g.values) for g in scored],
            f"{label} per condition",
            "mIoU",
        )
        if scored
        else None
    )
    curves = [
        (
            run.name,
            [float(r["step"]) for r in run.val],
            [
                float(r["miou"]) if isinstance(r.get("miou"), int | float) else math.nan
                for r in run.val
            ],
        )
        for run in runs
        if run.val
    ]
    curves_chart = (
        plots.curves_png(curves, "Validation mIoU of every run", "mIoU", percent=True)
        if curves
        else None
    )
    return {"group_chart": group_chart, "curves_chart": curves_chart}


def comparison_section(runs: Sequence[RunInfo]) -> Markup:
    """Table of every run; for several runs, seed groups (mean ± sd) and overlaid curves."""
    splits = sorted({split for run in runs for split in run.evals}, key=lambda s: (s != "test", s))
    headers = ["run", "method", "backbone", "labelled", "seed", "iterations", "best val mIoU (%)"]
    for split in splits:
        headers += [f"{split} mIoU (%)", f"{split} pixel acc. (%)"]
    context: dict[str, Any] = {
        "run_headers": headers,
        "run_rows": [_run_row(run, splits) for run in runs],
        "single": len(runs) == 1,
    }
    if len(runs) > 1:
        featured = featured_split(runs)
        label = metric_label(featured)
        groups = group_by_condition(runs, featured)
        context.update(
            split=featured,
            label=label,
            missing=[run.name for run in runs if run_value(run, featured) is None],
            groups=[_group_row(g) for g in groups],
            **_comparison_charts(runs, groups, label),
        )
    return render("comparison.html", **context)


def overview_stats(runs: Sequence[RunInfo]) -> list[tuple[str, str]]:
    """Headline numbers: what was run (no single-run winner: see the comparison above)."""
    datasets = sorted({str(run.config.get("dataset", "?")) for run in runs})
    seeds = sorted({run.seed for run in runs if isinstance(run.seed, int)})
    evaluated = sum(1 for run in runs if run.evals)
    return [
        (str(len(runs)), "runs"),
        (", ".join(datasets), "dataset"),
        (", ".join(map(str, seeds)) or "–", "seeds"),
        (f"{evaluated}/{len(runs)}", "runs evaluated"),
    ]


def cross_run_sections(
    runs: Sequence[RunInfo], options: ReportOptions
) -> list[tuple[str, str, Markup]]:
    """(id, heading, body) of the sections comparing runs, first in the page."""
    from als4gan.report import crossrun, sidebyside

    pool = crossrun.pool_class_share(runs)
    renderers: dict[str, Callable[[], str]] = {
        "answer": lambda: crossrun.answer_section(runs),
        "per-class-across": lambda: crossrun.per_class_section(runs, pool),
        "class-histograms": lambda: crossrun.class_histogram_section(runs, pool),
        "side-by-side": lambda: sidebyside.side_by_side_section(runs, options.examples),
    }
    return [
        (key, heading, guard(renderers[key], heading.lower()))
        for key, heading in crossrun.CROSS_SECTIONS
    ]


# --------------------------------------------------------------------------- page
def render_report(runs: Sequence[RunInfo], options: ReportOptions) -> str:
    """The whole HTML page."""
    from als4gan.report import sections
    from als4gan.report.crossrun import CROSS_SECTIONS
    from als4gan.runtime import progress

    cross = cross_run_sections(runs, options)
    comparison = guard(lambda: comparison_section(runs), "comparison")
    bodies = []
    with progress(runs, desc="report", unit="run") as bar:
        for run in bar:
            bodies.append(sections.run_section(run, options.examples))
    return str(
        render(
            "page.html",
            title=options.title,
            runs=runs,
            created=utc_now(),
            version=__version__,
            cross_sections=CROSS_SECTIONS,
            cross_bodies=cross,
            stats=overview_stats(runs),
            comparison=comparison,
            run_bodies=bodies,
        )
    )


def build_report(
    run_dirs: Sequence[str | Path], out: str | Path, options: ReportOptions | None = None
) -> Path:
    """Read the run folders and write the report to ``out`` (atomically).

    Raises:
        FileNotFoundError: If a run folder does not exist.
    """
    runs = load_runs(run_dirs)
    page = render_report(runs, options or ReportOptions())
    path = Path(out)
    atomic_write_text(path, page)
    return path
