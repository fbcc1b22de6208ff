"""Cross-run sections of the report: did active learning help, and where?

Runs are placed in the grid from what their folders record (``config.yaml``: method, seed,
``labeled_ratio``; ``selection/selection.json``: strategy and labelled ratio), then compared
seed by seed with :mod:`als4gan.stats` exactly as ``als4gan run`` does in ``results.md``:
each strategy against random at the same ratio and method, each method against supervised on
the same labelled sets. The sections here come first in the page; they read files only (the
side-by-side predictions are in :mod:`als4gan.report.sidebyside`).
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from als4gan.draw import crossplots
from als4gan.errors import ConfigError
from als4gan.experiment.results import CellResult, comparison_label, paired_comparisons, summarize
from als4gan.experiment.spec import REFERENCE_METHOD, REFERENCE_STRATEGY, Cell
from als4gan.report.render import pct, points, render
from als4gan.report.runs import RunInfo, featured_split, metric_label, run_value

log = logging.getLogger(__name__)

#: Config keys that place a run in the grid (the rest must agree for runs to be compared).
GRID_KEYS = frozenset({"method", "labeled_ratio"})


@dataclass
class Placed:
    """A run with its place in the grid and its score."""

    run: RunInfo
    cell: Cell
    family: int
    value: float | None


def run_cell(run: RunInfo) -> Cell | None:
    """Where a run sits in the grid: (strategy, labelled ratio, seed, method), or ``None``.

    A run trained from a selection takes the selection's strategy and ratio (from
    ``selection.json``); a run trained with ``--labeled-ratio R`` and no selection is
    ``random`` at ``R`` (the fully supervised reference ``full`` when ``R`` is 1).
    """
    method = run.config.get("method")
    seed = run.seed
    if not isinstance(method, str) or not isinstance(seed, int):
        return None
    meta = run.selection_meta
    if meta and meta.get("strategy"):
        budget = meta.get("budget")
        ratio: Any = None
        if isinstance(budget, Mapping):
            ratio = budget.get("labeled_ratio")
            if ratio is None and budget.get("budget") and budget.get("pool_size"):
                ratio = round(float(budget["budget"]) / float(budget["pool_size"]), 4)
        if ratio is None and isinstance(meta.get("config"), Mapping):
            ratio = meta["config"].get("labeled_ratio")
        if not isinstance(ratio, int | float):
            return None
        return Cell(str(meta["strategy"]), float(ratio), seed, method)
    ratio = run.config.get("labeled_ratio")
    if isinstance(ratio, int | float) and not run.config.get("selection"):
        if float(ratio) >= 1 and method == REFERENCE_METHOD:
            return Cell(REFERENCE_STRATEGY, 1.0, seed, method)
        return Cell("random", float(ratio), seed, method)
    return None


def _family_key(run: RunInfo) -> tuple[tuple[str, str], ...]:
    return tuple(
        (key, value)
        for key, value in run.condition()
        if key not in GRID_KEYS and not key.startswith("selection.")
    )


def place_runs(runs: Sequence[RunInfo], split: str | None) -> tuple[list[Placed], list[str]]:
    """Grid places of the runs that have one, with their score; and the names of the others.

    Runs whose settings differ in anything but method, labelled set and seed (e.g. another
    number of iterations) fall in different families and are never compared with each other.
    """
    families: dict[tuple[tuple[str, str], ...], int] = {}
    placed: list[Placed] = []
    unplaced: list[str] = []
    for run in runs:
        cell = run_cell(run)
        if cell is None:
            unplaced.append(run.name)
            continue
        family = families.setdefault(_family_key(run), len(families))
        placed.append(Placed(run, cell, family, run_value(run, split)))
    return placed, unplaced


def _family_results(placed: Sequence[Placed], family: int) -> list[CellResult]:
    return [
        CellResult(item.cell, item.value, run_dir=str(item.run.path))
        for item in placed
        if item.family == family and item.value is not None
    ]


def condition_name(ratio: float, method: str, strategy: str) -> str:
    """How a condition of the grid is shown, e.g. ``0.1 · s4gan · entropy``."""
    if strategy == REFERENCE_STRATEGY:
        return "all labels (reference)"
    return f"{ratio:g} · {method} · {strategy}"


# --------------------------------------------------------------------------- the answer
def _family_block(placed: Sequence[Placed], family: int, label: str) -> dict[str, Any] | None:
    """Verdicts, summary table and chart of one settings group (``None`` when it has no score)."""
    results = _family_results(placed, family)
    if not results:
        return None
    example = next(item.run.name for item in placed if item.family == family)
    block: dict[str, Any] = {"number": family + 1, "example": example, "error": None}
    try:
        rows = summarize(results)
        comparisons = paired_comparisons(results)
    except ConfigError as err:
        block["error"] = str(err)
        return block
    block["verdicts"] = [_verdict(row) for row in comparisons]
    block["headers"] = _summary_headers(label)
    block["rows"] = _summary_rows(rows, comparisons)
    block["chart"] = (
        crossplots.differences_png(
            [_comparison_title(c) for c in comparisons],
            [float(c["mean_diff"]) for c in comparisons],
            [c["ci_low"] for c in comparisons],
            [c["ci_high"] for c in comparisons],
            f"Paired difference in {label}",
        )
        if comparisons
        else None
    )
    return block


def answer_section(runs: Sequence[RunInfo]) -> Markup:
    """The answer to "did active learning help?": comparisons in words, a table and a chart."""
    split = featured_split(runs)
    label = metric_label(split)
    placed, unplaced = place_runs(runs, split)
    families = sorted({item.family for item in placed})
    blocks = [block for f in families if (block := _family_block(placed, f, label)) is not None]
    return render(
        "answer.html",
        label=label,
        unplaced=unplaced,
        families=len(families),
        blocks=blocks,
        any_comparison=any(b["error"] is None and b["verdicts"] for b in blocks),
    )


def _comparison_title(row: Mapping[str, Any]) -> str:
    tested, baseline, context = comparison_label(row)
    return f"{tested} vs {baseline} ({row['ratio']:g}, {context})"


def _verdict(row: Mapping[str, Any]) -> dict[str, str]:
    """One sentence of the verdict list, with where it holds."""
    _, _, context = comparison_label(row)
    where = (
        f"{row['ratio']:g} labelled, {context}"
        if row["kind"] == "strategy"
        else f"{row['ratio']:g} labelled, {context} selection"
    )
    return {
        "css": "sig" if row["significant"] else "nsig",
        "where": where,
        "sentence": row["sentence"],
    }


def _summary_headers(label: str) -> list[str]:
    return [
        "ratio",
        "method",
        "strategy",
        "seeds",
        f"{label} (%) mean ± sd",
        "share of full supervision",
        "vs random (points)",
        "95 % CI",
        "wins",
        "result",
    ]


def _against_random(comparison: Mapping[str, Any] | None) -> dict[str, Any]:
    """The "vs random" cells of a summary row."""
    if comparison is None:
        return {"difference": "–", "interval": "–", "wins": "–", "verdict": "–"}
    interval: Any = (
        "n = 1, no interval"
        if comparison["ci_low"] is None
        else (points(comparison["ci_low"]), points(comparison["ci_high"]))
    )
    return {
        "difference": points(comparison["mean_diff"]),
        "interval": interval,
        "wins": f"{comparison['wins']}/{comparison['n']}",
        "verdict": comparison["verdict"],
    }


def _summary_rows(
    rows: Sequence[Mapping[str, Any]], comparisons: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The summary table: one row per condition, with its comparison against random."""
    against_random = {
        (c["ratio"], c["method"], c["strategy"]): c for c in comparisons if c["kind"] == "strategy"
    }
    body = []
    for row in rows:
        comparison = against_random.get((row["ratio"], row["method"], row["strategy"]))
        body.append(
            {
                "ratio": f"{row['ratio']:g}",
                "method": row["method"],
                "strategy": "all labels (reference)" if row["reference"] else row["strategy"],
                "n": row["n"],
                "mean": pct(row["miou_mean"]),
                "spread": f" ± {pct(row['miou_std'])}" if row["n"] > 1 else "",
                "share": f"{pct(row['share_of_full'], 0)} %"
                if row["share_of_full"] is not None
                else "–",
                **_against_random(comparison),
            }
        )
    return body


# --------------------------------------------------------------------------- per-class IoU
def _eval_classes(run: RunInfo, split: str | None) -> tuple[list[str], list[float | None]] | None:
    if split is None or split not in run.evals:
        return None
    metrics = run.evals[split]
    names = list(metrics.get("class_names") or [])
    iou = list(metrics.get("per_class_iou") or [])
    if not names or len(names) != len(iou):
        return None
    return names, [float(v) if isinstance(v, int | float) else None for v in iou]


def _nanmean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(kept) if kept else None


def _class_means(
    runs: Sequence[RunInfo], split: str | None
) -> tuple[list[str] | None, dict[tuple[int, float, str, str], list[list[float | None]]]]:
    """Class names and per-class IoU of every run, grouped by (family, ratio, method, strategy)."""
    placed, _ = place_runs(runs, split)
    groups: dict[tuple[int, float, str, str], list[list[float | None]]] = {}
    names: list[str] | None = None
    for item in placed:
        found = _eval_classes(item.run, split)
        if found is None:
            continue
        if names is None:
            names = found[0]
        if found[0] != names:
            continue
        key = (item.family, item.cell.ratio, item.cell.method, item.cell.strategy)
        groups.setdefault(key, []).append(found[1])
    return names, groups


def per_class_section(runs: Sequence[RunInfo], pool_share: Mapping[str, float] | None) -> Markup:
    """Per-class IoU of every condition (mean over seeds), with the change against random."""
    split = featured_split(runs)
    names, groups = _class_means(runs, split)
    if not groups or names is None:
        return render("per_class_across.html", rows=[])
    means = {
        key: [_nanmean([values[c] for values in members]) for c in range(len(names))]
        for key, members in groups.items()
    }
    ordered = sorted(means, key=lambda k: (k[3] != REFERENCE_STRATEGY, k))
    rarest = min(pool_share, key=lambda n: pool_share[n]) if pool_share else None
    headers = ["condition", "seeds"] + [
        f"{name} (rarest)" if name == rarest else name for name in names
    ]
    rows = []
    for key in ordered:
        family, ratio, method, strategy = key
        baseline = means.get((family, ratio, method, "random"))
        compare = baseline is not None and strategy not in ("random", REFERENCE_STRATEGY)
        cells = []
        for c, value in enumerate(means[key]):
            base = baseline[c] if baseline is not None else None
            change = (
                points(value - base) if compare and value is not None and base is not None else ""
            )
            cells.append((pct(value), change))
        name = condition_name(ratio, method, strategy)
        rows.append({"condition": name, "seeds": len(groups[key]), "cells": cells})
    series = [(condition_name(k[1], k[2], k[3]), means[k]) for k in ordered]
    charts = [  # at most six bars per class in one chart
        crossplots.class_bars_png(
            names, series[start : start + 6], f"Per-class IoU ({split}, mean over seeds)", "IoU (%)"
        )
        for start in range(0, len(series), 6)
    ]
    return render("per_class_across.html", split=split, headers=headers, rows=rows, charts=charts)


# --------------------------------------------------------------------------- class histograms
def pool_class_share(runs: Sequence[RunInfo]) -> dict[str, float] | None:
    """Pixel share per class of the whole training pool the selections drew from (or None)."""
    from als4gan.active.sheet import class_histogram
    from als4gan.evalsetup import resolve_data_source

    for run in runs:
        if not run.selection_meta or not run.config:
            continue
        try:
            source = resolve_data_source(None, None, {}, {}, run.config)
            dataset = source.build(str(run.config.get("split") or "train"))
            share = class_histogram(dataset, dataset.ids).get("pixel_share")
        except Exception as err:  # the section says the pool is unknown instead
            log.info("report: pool class histogram unavailable: %s", err)
            return None
        return dict(share) if isinstance(share, Mapping) else None
    return None


def _chosen_shares(
    runs: Sequence[RunInfo],
) -> dict[tuple[float, str], dict[int, Mapping[str, float]]]:
    """Pixel share per class of the chosen images, by (ratio, strategy) and seed."""
    chosen: dict[tuple[float, str], dict[int, Mapping[str, float]]] = {}
    for run in runs:
        cell = run_cell(run)
        meta = run.selection_meta or {}
        labelled = meta.get("labelled")
        histogram = labelled.get("histogram") if isinstance(labelled, Mapping) else None
        share = histogram.get("pixel_share") if isinstance(histogram, Mapping) else None
        if cell is None or not isinstance(share, Mapping):
            continue
        # the methods of one (strategy, ratio, seed) share one selection: count it once
        chosen.setdefault((cell.ratio, cell.strategy), {})[cell.seed] = share
    return chosen


def class_histogram_section(
    runs: Sequence[RunInfo], pool_share: Mapping[str, float] | None
) -> Markup:
    """Classes of the images each strategy chose (labelled pixel share) against the pool's."""
    chosen = _chosen_shares(runs)
    if not chosen:
        return render("class_histograms.html", rows=[])
    first_share = next(iter(next(iter(chosen.values())).values()))
    names = list(pool_share) if pool_share else list(first_share)
    rows: list[tuple[str, int, list[float | None]]] = []
    if pool_share:
        rows.append(("training pool (all images)", 0, [pool_share.get(n) for n in names]))
    for (ratio, strategy), by_seed in sorted(chosen.items()):
        shares = [_nanmean([s.get(n) for s in by_seed.values()]) for n in names]
        rows.append((f"{ratio:g} · {strategy}", len(by_seed), shares))
    series = [(label, values) for label, _, values in rows]
    charts = [
        crossplots.class_bars_png(
            names,
            series[start : start + 6],
            "Class share of the chosen images",
            "share of labelled pixels (%)",
        )
        for start in range(0, len(series), 6)
    ]
    return render(
        "class_histograms.html",
        rows=rows,
        headers=["labelled set", "seeds", *names],
        pool_known=bool(pool_share),
        charts=charts,
    )


#: The cross-run sections, in page order: (data-section id, heading).
CROSS_SECTIONS = (
    ("answer", "Did active learning help?"),
    ("per-class-across", "Per-class IoU across runs"),
    ("class-histograms", "Classes of the chosen images"),
    ("side-by-side", "The same evaluated images across runs"),
)


__all__ = [
    "CROSS_SECTIONS",
    "Placed",
    "answer_section",
    "class_histogram_section",
    "condition_name",
    "per_class_section",
    "place_runs",
    "pool_class_share",
    "run_cell",
]
