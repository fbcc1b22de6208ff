"""Cross-run sections of the report: did active learning help, and where?

Runs are placed in the grid from what their folders record (``config.yaml``: method, seed,
``labeled_ratio``; ``selection/selection.json``: strategy and labelled ratio), then compared
seed by seed with :mod:`als4gan.stats` exactly as ``als4gan run`` does in ``results.md``:
each strategy against random at the same ratio and method, each method against supervised on
the same labelled sets. The sections here come first in the page; they read files only, except
the side-by-side predictions, which run each compared checkpoint on a few validation images.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from als4gan.errors import ConfigError
from als4gan.experiment import (
    REFERENCE_METHOD,
    REFERENCE_STRATEGY,
    Cell,
    CellResult,
    comparison_label,
    paired_comparisons,
    summarize,
)
from als4gan.report import crossplots
from als4gan.report.runs import RunInfo, featured_split, metric_label, run_value

log = logging.getLogger(__name__)

#: Config keys that place a run in the grid (the rest must agree for runs to be compared).
GRID_KEYS = frozenset({"method", "labeled_ratio"})
#: Most runs shown side by side on the same validation images.
SIDE_BY_SIDE_LIMIT = 8
#: Pixel side of each panel of the side-by-side table.
PANEL_SIDE = 192


@dataclass
class Placed:
    """A run with its place in the grid and its score."""

    run: RunInfo
    cell: Cell
    family: int
    value: float | None


def _esc(value: Any) -> str:
    import html

    return html.escape(str(value), quote=True)


def _pct(value: Any, digits: int = 1) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{100 * float(value):.{digits}f}"


def _points(value: Any, sign: bool = True) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{100 * float(value):+.1f}" if sign else f"{100 * float(value):.1f}"


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


def _condition_name(ratio: float, method: str, strategy: str) -> str:
    if strategy == REFERENCE_STRATEGY:
        return "all labels (reference)"
    return f"{ratio:g} · {method} · {strategy}"


# --------------------------------------------------------------------------- the answer
def answer_section(runs: Sequence[RunInfo]) -> str:
    """The answer to "did active learning help?": comparisons in words, a table and a chart."""
    from als4gan.report.html import figure, note, table

    split = featured_split(runs)
    label = metric_label(split)
    placed, unplaced = place_runs(runs, split)
    families = sorted({item.family for item in placed})
    parts: list[str] = []
    if unplaced:
        parts.append(
            f'<p class="muted">Not placed in the grid (no method, seed or labelled set recorded): '
            f"{_esc(', '.join(unplaced))}.</p>"
        )
    if len(families) > 1:
        parts.append(
            note(
                f"The runs fall in {len(families)} groups with different settings (other than "
                "method, labelled set and seed); runs are only compared within a group."
            )
        )
    any_comparison = False
    for family in families:
        results = _family_results(placed, family)
        if not results:
            continue
        try:
            rows = summarize(results)
            comparisons = paired_comparisons(results)
        except ConfigError as err:
            parts.append(note(f"No paired comparison: {_esc(err)}."))
            continue
        if len(families) > 1:
            example = next(item.run.name for item in placed if item.family == family)
            parts.append(f"<h3>Settings group {family + 1} (e.g. {_esc(example)})</h3>")
        if comparisons:
            any_comparison = True
            parts.append(_verdict_list(comparisons))
        parts.append(_summary_table(rows, comparisons, label, table))
        if comparisons:
            chart = crossplots.differences_png(
                [_comparison_title(c) for c in comparisons],
                [float(c["mean_diff"]) for c in comparisons],
                [c["ci_low"] for c in comparisons],
                [c["ci_high"] for c in comparisons],
                f"Paired difference in {label}",
            )
            parts.append(
                figure(
                    chart,
                    "Mean per-seed difference, in mIoU points; bars: 95 % confidence interval "
                    "(none with one seed). An interval that crosses 0 is not significant.",
                    "paired differences",
                )
            )
    if not any_comparison:
        parts.insert(
            0,
            note(
                "Nothing to compare yet: a paired comparison needs runs of a strategy and of "
                "<b>random</b> at the same labelled ratio and method (or s4GAN and supervised on "
                "the same selection) with the same seeds, as the cells of <code>als4gan "
                "run</code> are."
            ),
        )
    header = (
        f'<p class="sub">Each strategy against random at the same labelled ratio and method, '
        f"and each method against supervised on the same labelled images, compared seed by "
        f"seed on {_esc(label)} (the same seed gives the same initialisation and data order). "
        "Significant: the 95 % confidence interval of the mean difference excludes 0.</p>"
    )
    return header + "".join(parts)


def _comparison_title(row: Mapping[str, Any]) -> str:
    tested, baseline, context = comparison_label(row)
    return f"{tested} vs {baseline} ({row['ratio']:g}, {context})"


def _verdict_list(comparisons: Sequence[Mapping[str, Any]]) -> str:
    items = []
    for row in comparisons:
        _, _, context = comparison_label(row)
        where = (
            f"{row['ratio']:g} labelled, {context}"
            if row["kind"] == "strategy"
            else f"{row['ratio']:g} labelled, {context} selection"
        )
        css = "sig" if row["significant"] else "nsig"
        items.append(
            f'<li class="{css}"><span class="muted">{_esc(where)}:</span> '
            f"{_esc(row['sentence'])}</li>"
        )
    return f'<ul class="verdicts">{"".join(items)}</ul>'


def _summary_table(
    rows: Sequence[Mapping[str, Any]],
    comparisons: Sequence[Mapping[str, Any]],
    label: str,
    table: Any,
) -> str:
    against_random = {
        (c["ratio"], c["method"], c["strategy"]): c for c in comparisons if c["kind"] == "strategy"
    }
    body = []
    for row in rows:
        spread = f" ± {_pct(row['miou_std'])}" if row["n"] > 1 else ""
        comparison = against_random.get((row["ratio"], row["method"], row["strategy"]))
        if comparison is None:
            difference = interval = wins = verdict = "–"
        else:
            difference = _points(comparison["mean_diff"])
            low, high = _points(comparison["ci_low"]), _points(comparison["ci_high"])
            interval = (
                "n = 1, no interval"
                if comparison["ci_low"] is None
                else f"{low}&nbsp;..&nbsp;{high}"
            )
            wins = f"{comparison['wins']}/{comparison['n']}"
            verdict = _esc(comparison["verdict"])
        strategy = "all labels (reference)" if row["reference"] else row["strategy"]
        body.append(
            [
                f"{row['ratio']:g}",
                _esc(row["method"]),
                _esc(strategy),
                str(row["n"]),
                f"<b>{_pct(row['miou_mean'])}</b>{spread}",
                f"{_pct(row['share_of_full'], 0)} %" if row["share_of_full"] is not None else "–",
                difference,
                interval,
                wins,
                verdict,
            ]
        )
    headers = [
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
    result: str = table(headers, body, {0, 3, 4, 5, 6, 7, 8})
    return result


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


def per_class_section(runs: Sequence[RunInfo], pool_share: Mapping[str, float] | None) -> str:
    """Per-class IoU of every condition (mean over seeds), with the change against random."""
    from als4gan.report.html import figure, note, table

    split = featured_split(runs)
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
    if not groups or names is None:
        return note(
            "No per-class scores to compare: evaluate the runs first (<code>als4gan evaluate "
            "--checkpoint RUN_DIR --split test</code>)."
        )
    means = {
        key: [_nanmean([values[c] for values in members]) for c in range(len(names))]
        for key, members in groups.items()
    }
    ordered = sorted(means, key=lambda k: (k[3] != REFERENCE_STRATEGY, k))
    rarest = min(pool_share, key=lambda n: pool_share[n]) if pool_share else None
    headers = ["condition", "seeds"] + [
        f"{name} (rarest)" if name == rarest else name for name in names
    ]
    body = []
    for key in ordered:
        family, ratio, method, strategy = key
        baseline = means.get((family, ratio, method, "random"))
        cells = []
        for c, value in enumerate(means[key]):
            text = _pct(value)
            if baseline is not None and strategy not in ("random", REFERENCE_STRATEGY):
                base = baseline[c]
                if value is not None and base is not None:
                    text += f' <span class="muted">({_points(value - base)})</span>'
            cells.append(text)
        body.append([_esc(_condition_name(ratio, method, strategy)), str(len(groups[key])), *cells])
    parts = [
        f'<p class="sub">Mean IoU per class over seeds on the <b>{_esc(split)}</b> split, %; '
        "in brackets: the change against random at the same ratio and method, in points.</p>",
        table(headers, body, set(range(1, len(headers)))),
    ]
    series = [(_condition_name(k[1], k[2], k[3]), means[k]) for k in ordered]
    for start in range(0, len(series), 6):  # at most six bars per class in one chart
        chunk = series[start : start + 6]
        parts.append(
            figure(
                crossplots.class_bars_png(
                    names, chunk, f"Per-class IoU ({split}, mean over seeds)", "IoU (%)"
                ),
                "Mean IoU per class over seeds; n/a: class absent from labels and predictions.",
                "per-class IoU across runs",
            )
        )
    return "".join(parts)


# --------------------------------------------------------------------------- class histograms
def pool_class_share(runs: Sequence[RunInfo]) -> dict[str, float] | None:
    """Pixel share per class of the whole training pool the selections drew from (or None)."""
    from als4gan.active.sheet import class_histogram
    from als4gan.evaluate import resolve_data_source

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


def class_histogram_section(runs: Sequence[RunInfo], pool_share: Mapping[str, float] | None) -> str:
    """Classes of the images each strategy chose (labelled pixel share) against the pool's."""
    from als4gan.report.html import figure, note, table

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
    if not chosen:
        return note(
            "No class histogram of the chosen images: the runs have no "
            "<code>selection/selection.json</code> (made by <code>als4gan select</code>)."
        )
    first_share = next(iter(next(iter(chosen.values())).values()))
    names = list(pool_share) if pool_share else list(first_share)
    rows: list[tuple[str, int, list[float | None]]] = []
    if pool_share:
        rows.append(("training pool (all images)", 0, [pool_share.get(n) for n in names]))
    for (ratio, strategy), by_seed in sorted(chosen.items()):
        shares = [_nanmean([s.get(n) for s in by_seed.values()]) for n in names]
        rows.append((f"{ratio:g} · {strategy}", len(by_seed), shares))
    body = [
        [_esc(label), str(count) if count else "–", *[_pct(v) for v in values]]
        for label, count, values in rows
    ]
    parts = [
        '<p class="sub">Share of the labelled pixels per class in the images each strategy chose '
        "(mean over seeds, %), against the whole training pool"
        + ("" if pool_share else " (the pool could not be read: its dataset root is missing)")
        + ".</p>",
        table(["labelled set", "seeds", *names], body, set(range(1, len(names) + 2))),
    ]
    series = [(label, values) for label, _, values in rows]
    for start in range(0, len(series), 6):
        parts.append(
            figure(
                crossplots.class_bars_png(
                    names,
                    series[start : start + 6],
                    "Class share of the chosen images",
                    "share of labelled pixels (%)",
                ),
                "Pixel share per class of the chosen images against the pool's.",
                "class histogram of the chosen images",
            )
        )
    return "".join(parts)


# --------------------------------------------------------------------------- side by side
def _png(array: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _jpeg(array: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(buffer, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def side_by_side_runs(runs: Sequence[RunInfo]) -> list[Placed]:
    """One run per condition, all of the seed most conditions share, that has a checkpoint."""
    placed, _ = place_runs(runs, featured_split(runs))
    placed = [item for item in placed if item.run.checkpoint is not None]
    if not placed:
        return []
    counts: dict[int, int] = {}
    for item in placed:
        counts[item.cell.seed] = counts.get(item.cell.seed, 0) + 1
    seed = min(counts, key=lambda s: (-counts[s], s))
    chosen: dict[tuple[int, float, str, str], Placed] = {}
    for item in placed:
        key = (item.family, item.cell.ratio, item.cell.method, item.cell.strategy)
        if item.cell.seed == seed and key not in chosen:
            chosen[key] = item
    return [chosen[k] for k in sorted(chosen, key=lambda k: (k[3] != REFERENCE_STRATEGY, k))]


def side_by_side_section(runs: Sequence[RunInfo], examples: int, device_name: str) -> str:
    """The same validation images across runs: image, truth, each run's prediction."""
    from als4gan.report.html import note

    if examples <= 0:
        return note("Prediction examples were switched off (<code>--examples 0</code>).")
    chosen = side_by_side_runs(runs)
    if len(chosen) < 2:
        return note(
            "Fewer than two runs with a checkpoint and a place in the grid: nothing to show "
            "side by side."
        )
    left_out = chosen[SIDE_BY_SIDE_LIMIT:]
    chosen = chosen[:SIDE_BY_SIDE_LIMIT]
    import torch

    from als4gan.checkpoint import load_segmentation_model
    from als4gan.evaluate import (
        EvalSettings,
        predict_image_batch,
        resolve_data_source,
        resolve_window,
    )
    from als4gan.report.images import display_rgb, fit_size, resize_nearest
    from als4gan.runtime import resolve_device

    device = resolve_device(device_name)
    first = chosen[0].run
    source = resolve_data_source(None, None, {}, {}, first.config)
    split = str(first.config.get("val_split") or "val")
    dataset = source.build(split)
    count = min(examples, len(dataset.ids))
    ids = [dataset.ids[round(i * (len(dataset.ids) - 1) / max(1, count - 1))] for i in range(count)]
    classes = dataset.classes
    samples = [dataset[dataset.ids.index(sample_id)] for sample_id in ids]
    predictions: list[list[np.ndarray | None]] = []
    for item in chosen:
        assert item.run.checkpoint is not None
        model, meta = load_segmentation_model(item.run.checkpoint, device)
        settings = EvalSettings(window=resolve_window(None, meta), device=device, batch_size=2)
        row: list[np.ndarray | None] = []
        for sample in samples:
            probs = predict_image_batch(model, sample["image"][None], dataset.num_classes, settings)
            row.append(probs[0].argmax(dim=0).numpy().astype(np.uint8))
        predictions.append(row)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    headers = ["image", "ground truth"] + [
        f"{_condition_name(i.cell.ratio, i.cell.method, i.cell.strategy)}<br>"
        f'<span class="muted">{_esc(i.run.name)}</span>'
        for i in chosen
    ]
    body = []
    for index, (sample_id, sample) in enumerate(zip(ids, samples, strict=True)):
        mask = sample["mask"].numpy()
        height, width = fit_size(mask.shape[0], mask.shape[1], PANEL_SIDE)
        from PIL import Image

        rgb = display_rgb(np.moveaxis(sample["image"].numpy(), 0, -1))
        image = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BOX))
        cells = [
            f'<img src="{_jpeg(image)}" alt="image {_esc(sample_id)}">'
            f"<div class='muted'>{_esc(sample_id)}</div>",
            f'<img src="{_png(classes.colorize(resize_nearest(mask, height, width)))}" '
            f'alt="ground truth {_esc(sample_id)}">',
        ]
        valid = mask != classes.ignore_index
        for item, row in zip(chosen, predictions, strict=True):
            prediction = row[index]
            assert prediction is not None
            accuracy = float((prediction[valid] == mask[valid]).mean()) if valid.any() else math.nan
            cells.append(
                f'<img src="{_png(classes.colorize(resize_nearest(prediction, height, width)))}" '
                f'alt="prediction of {_esc(item.run.name)}">'
                f"<div class='muted'>pixel acc. {_pct(accuracy)} %</div>"
            )
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "".join(f"<th>{header}</th>" for header in headers)
    legend = "".join(
        f'<span class="swatch"><i style="background: rgb({c[0]}, {c[1]}, {c[2]})"></i>'
        f"{_esc(name)}</span>"
        for name, c in zip(classes.names, classes.colors, strict=True)
    )
    seed = chosen[0].cell.seed
    parts = [
        f'<p class="sub">{len(ids)} image(s) of the <b>{_esc(split)}</b> split, predicted by the '
        f"best checkpoint of one run per condition (seed {seed}). Black in the ground truth: "
        "ignored pixels.</p>",
        f'<div class="legend">{legend}</div>',
        f'<div class="scroll"><table class="side"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>",
    ]
    if left_out:
        parts.append(
            f'<p class="muted">{len(left_out)} more condition(s) not shown: '
            f"{_esc(', '.join(item.run.name for item in left_out))}.</p>"
        )
    return "".join(parts)


#: The cross-run sections, in page order: (data-section id, heading).
CROSS_SECTIONS = (
    ("answer", "Did active learning help?"),
    ("per-class-across", "Per-class IoU across runs"),
    ("class-histograms", "Classes of the chosen images"),
    ("side-by-side", "The same validation images across runs"),
)


__all__ = [
    "CROSS_SECTIONS",
    "Placed",
    "answer_section",
    "class_histogram_section",
    "per_class_section",
    "place_runs",
    "pool_class_share",
    "run_cell",
    "side_by_side_section",
]
