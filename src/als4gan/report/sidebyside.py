"""The same images across runs: each run's prediction examples, read from its ``eval/`` folder.

``als4gan evaluate`` keeps the predictions of the same evenly spaced images of a split for every
run (:mod:`als4gan.evalexamples`), so the runs of a grid can be compared image by image without
running any model here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from markupsafe import Markup
from PIL import Image

from als4gan.draw.images import fit_size, resize_nearest
from als4gan.evalexamples import ExampleSet
from als4gan.experiment.spec import REFERENCE_STRATEGY
from als4gan.report.crossrun import Placed, condition_name, place_runs
from als4gan.report.render import array_uri, render
from als4gan.report.runs import RunInfo, featured_split
from als4gan.report.sections import run_examples

#: Most runs shown side by side on the same images.
SIDE_BY_SIDE_LIMIT = 8
#: Pixel side of each panel of the side-by-side table.
PANEL_SIDE = 192


def side_by_side_runs(runs: Sequence[RunInfo]) -> list[tuple[Placed, ExampleSet]]:
    """One run per condition, all of the seed most conditions share, that has examples."""
    placed, _ = place_runs(runs, featured_split(runs))
    found = [(item, run_examples(item.run)) for item in placed]
    with_examples = [(item, examples) for item, examples in found if examples is not None]
    if not with_examples:
        return []
    counts: dict[int, int] = {}
    for item, _ in with_examples:
        counts[item.cell.seed] = counts.get(item.cell.seed, 0) + 1
    seed = min(counts, key=lambda s: (-counts[s], s))
    chosen: dict[tuple[int, float, str, str], tuple[Placed, ExampleSet]] = {}
    for item, examples in with_examples:
        key = (item.family, item.cell.ratio, item.cell.method, item.cell.strategy)
        if item.cell.seed == seed and key not in chosen:
            chosen[key] = (item, examples)
    return [chosen[k] for k in sorted(chosen, key=lambda k: (k[3] != REFERENCE_STRATEGY, k))]


def _panel(array: np.ndarray, labels: bool) -> np.ndarray:
    """A panel scaled to fit :data:`PANEL_SIDE` (nearest for labels, area filter for images)."""
    height, width = fit_size(array.shape[0], array.shape[1], PANEL_SIDE)
    if labels:
        return resize_nearest(array, height, width)
    return np.asarray(Image.fromarray(array).resize((width, height), Image.Resampling.BOX))


def _rows(chosen: Sequence[tuple[Placed, ExampleSet]], count: int) -> list[dict[str, Any]]:
    """One table row per image the first run has and every other run has too."""
    first = chosen[0][1]
    shared = [i for i in first.ids if all(i in examples.ids for _, examples in chosen)]
    rows = []
    for sample_id in shared[:count]:
        predictions = []
        base = None
        for item, examples in chosen:
            record = next(r for r in examples.records if str(r["id"]) == sample_id)
            example = examples.load(record)
            base = base or example
            colours = examples.classes.colorize(_panel(example.prediction, labels=True))
            predictions.append((item.run.name, array_uri(colours), example.pixel_accuracy))
        assert base is not None
        rows.append(
            {
                "id": sample_id,
                "image": array_uri(_panel(base.image, labels=False), photo=True),
                "truth": array_uri(first.classes.colorize(_panel(base.truth, labels=True))),
                "predictions": predictions,
            }
        )
    return rows


def side_by_side_section(runs: Sequence[RunInfo], examples: int) -> Markup:
    """The same images across runs: image, truth, each run's prediction."""
    if examples <= 0:
        return render("side_by_side.html", state="off")
    chosen = side_by_side_runs(runs)
    if len(chosen) < 2:
        return render("side_by_side.html", state="few")
    left_out = [item.run.name for item, _ in chosen[SIDE_BY_SIDE_LIMIT:]]
    chosen = chosen[:SIDE_BY_SIDE_LIMIT]
    classes = chosen[0][1].classes
    columns = [
        (condition_name(i.cell.ratio, i.cell.method, i.cell.strategy), i.run.name)
        for i, _ in chosen
    ]
    return render(
        "side_by_side.html",
        state="shown",
        split=chosen[0][1].split,
        seed=chosen[0][0].cell.seed,
        legend=list(zip(classes.names, classes.colors, strict=True)),
        columns=columns,
        rows=_rows(chosen, examples),
        left_out=left_out,
    )
