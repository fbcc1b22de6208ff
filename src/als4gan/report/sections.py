"""The sections of one run's card: what each shows is computed here, the markup is a template.

Each section reads the run folder only (metrics, evaluation results and prediction examples
written by ``als4gan evaluate``, the selection's files); a section whose inputs are missing
says what is missing and which command produces it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from markupsafe import Markup

from als4gan.data.encoding import ClassTable
from als4gan.draw import plots
from als4gan.evalexamples import ExampleSet, read_examples
from als4gan.report.render import guard, pct, render
from als4gan.report.runs import RunInfo

#: Every per-run section, in page order: (data-section id, heading).
RUN_SECTIONS = (
    ("curves", "Training curves"),
    ("per-class-iou", "Per-class IoU"),
    ("confusion-matrix", "Confusion matrix"),
    ("selection", "Selected images"),
    ("predictions", "Predictions on evaluated images"),
    ("config", "Resolved configuration"),
)
#: Images shown in a contact sheet built from labeled.txt.
SHEET_LIMIT = 48


def _class_table(run: RunInfo, names: Sequence[str]) -> ClassTable | None:
    """Class colours from the run's evaluation (or ``None``)."""
    for metrics in run.evals.values():
        colors = metrics.get("class_colors")
        if isinstance(colors, list) and len(colors) == len(names):
            return ClassTable.from_dict({"names": list(names), "colors": colors})
    return None


def _series(records: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    """``key`` of every record as floats (NaN where missing)."""
    return [float(r[key]) if isinstance(r.get(key), int | float) else math.nan for r in records]


def _logged(records: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> dict[str, Any]:
    """The series of the keys in ``labels`` that at least one record holds."""
    return {
        key: _series(records, key)
        for key in labels
        if any(isinstance(r.get(key), int | float) for r in records)
    }


def section_curves(run: RunInfo) -> Markup:
    """Loss curves (small multiples) and the validation mIoU curve."""
    context: dict[str, Any] = {"losses": None, "discriminator": None, "val": None, "steps": 0}
    if run.train:
        steps = [float(r["step"]) for r in run.train]
        context["steps"] = len(steps)
        losses = _logged(run.train, plots.LOSS_LABELS)
        if losses:
            context["losses"] = plots.loss_curves_png(steps, losses)
        d_values = _logged(run.train, plots.DISCRIMINATOR_LABELS)
        if d_values:
            tau = run.config.get("threshold_st")
            context["discriminator"] = plots.discriminator_png(
                steps, d_values, float(tau) if isinstance(tau, int | float) else None
            )
    if run.val:
        steps = [float(r["step"]) for r in run.val]
        context["val"] = plots.curves_png(
            [(run.name, steps, _series(run.val, "miou"))],
            "Validation mIoU",
            "mIoU",
            percent=True,
            markers=len(steps) <= 40,
        )
    return render("curves.html", best=run.best_val, **context)


def section_per_class(run: RunInfo) -> Markup:
    """Per-class IoU bars and a table from the featured evaluation (else the best val record)."""
    featured = run.main_eval()
    split = step = None
    if featured is not None:
        split, metrics = featured
        names = list(metrics.get("class_names") or [])
        iou = list(metrics.get("per_class_iou") or [])
        f1 = list(metrics.get("per_class_f1") or [None] * len(names))
        step = metrics.get("step")
    else:
        best = run.best_val
        if best is None or not best.get("per_class_iou"):
            return render("per_class.html", image=None)
        iou = list(best["per_class_iou"])
        names = list(best.get("class_names") or [f"class {i}" for i in range(len(iou))])
        f1 = [None] * len(names)
        step = best["step"]
    if len(names) != len(iou):
        names = [f"class {i}" for i in range(len(iou))]
    table_ = _class_table(run, names)
    image = plots.per_class_bars_png(
        names, [(run.name, iou)], colors=table_.colors if table_ else None, title="Per-class IoU"
    )
    rows = [
        [name, pct(iou[i]), pct(f1[i] if i < len(f1) else None)] for i, name in enumerate(names)
    ]
    return render("per_class.html", image=image, split=split, step=step, rows=rows)


def section_confusion(run: RunInfo) -> Markup:
    """The confusion matrix of the featured evaluation."""
    featured = run.main_eval()
    if featured is None or not featured[1].get("confusion_matrix"):
        return render("confusion.html", image=None)
    split, metrics = featured
    matrix = np.asarray(metrics["confusion_matrix"], dtype=np.int64)
    names = list(metrics.get("class_names") or [str(i) for i in range(len(matrix))])
    image = plots.confusion_matrix_png(matrix, names, title=f"{split} — {int(matrix.sum())} pixels")
    rows = [
        ["mIoU", pct(metrics.get("miou"), 2)],
        ["pixel accuracy", pct(metrics.get("pixel_accuracy"), 2)],
        ["mean class accuracy", pct(metrics.get("mean_class_accuracy"), 2)],
        ["frequency-weighted IoU", pct(metrics.get("fwiou"), 2)],
    ]
    dataset = metrics.get("dataset") or {}
    chosen = metrics.get("selected_on")
    return render(
        "confusion.html",
        image=image,
        rows=rows,
        split=split,
        num_images=dataset.get("num_images", "?"),
        checkpoint=Path(str(metrics.get("checkpoint", "?"))).name,
        step=metrics.get("step"),
        window=metrics.get("window") or "whole image",
        crf=bool(metrics.get("crf")),
        chosen={"split": chosen.get("split"), "candidates": chosen.get("candidates")}
        if isinstance(chosen, dict)
        else None,
    )


def _selection_sheet_from_dataset(run: RunInfo, ids: Sequence[str]) -> bytes:
    """A contact sheet of the selected images read from the run's dataset."""
    from als4gan.active.sheet import contact_sheet_png
    from als4gan.evalsetup import resolve_data_source

    source = resolve_data_source(None, None, {}, {}, run.config)
    dataset = source.build(str(run.config.get("split") or "train"))
    data, _ = contact_sheet_png(
        dataset, ids, None, f"{run.name}: labelled images", max_images=SHEET_LIMIT
    )
    return data


def _selection_facts(meta: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(kind, value) of what ``selection.json`` records, in display order."""
    facts: list[tuple[str, Any]] = []
    if meta.get("strategy"):
        facts.append(("strategy", meta["strategy"]))
    budget = meta.get("budget")
    if isinstance(budget, dict) and budget.get("formula"):
        facts.append(("budget", budget["formula"]))
    if isinstance(meta.get("rounds"), list):
        facts.append(("rounds", len(meta["rounds"])))
    if meta.get("seed") is not None:
        facts.append(("seed", meta["seed"]))
    rounds = meta.get("rounds")
    if isinstance(rounds, list) and rounds and isinstance(rounds[0], dict):
        auto = rounds[0].get("auto")
        if isinstance(auto, dict) and auto.get("reason"):
            facts.append(("auto", auto["reason"]))
    return facts


def _sheet(run: RunInfo, ids: Sequence[str]) -> dict[str, Any]:
    """Template values of a contact sheet drawn from ``ids`` (or the reason it could not be)."""
    context: dict[str, Any] = {"sheet": None, "sheet_error": None}
    context["ids"] = len(ids)
    context["more"] = SHEET_LIMIT if len(ids) > SHEET_LIMIT else None

    def draw() -> str:
        context["sheet"] = _selection_sheet_from_dataset(run, ids)
        return ""

    failure = guard(draw, "the contact sheet")
    if context["sheet"] is None:
        context["sheet_error"] = failure
    return context


def section_selection(run: RunInfo) -> Markup:
    """The selected images: selection/contact_sheet.png, else a sheet built from labeled.txt."""
    context: dict[str, Any] = {
        "facts_list": _selection_facts(run.selection_meta or {}),
        "embedding_map": run.embedding_map.read_bytes() if run.embedding_map else None,
        "kind": "none",
    }
    ratio = run.config.get("labeled_ratio")
    if run.contact_sheet is not None:
        count = f"{len(run.selection_ids)} images" if run.selection_ids is not None else "images"
        context.update(kind="sheet", sheet=run.contact_sheet.read_bytes(), count=count)
    elif run.selection_ids:
        context.update(kind="listed", **_sheet(run, run.selection_ids))
    elif ratio is not None:
        context.update(
            kind="random",
            ratio=pct(ratio, 3).rstrip("0").rstrip("."),
            seed=run.config.get("seed"),
            sheet=None,
            sheet_error=None,
        )
        if run.trained_ids:
            context.update(_sheet(run, run.trained_ids))
    return render("selection.html", **context)


def run_examples(run: RunInfo) -> ExampleSet | None:
    """The prediction examples of the run's featured evaluation (else of any evaluated split)."""
    root = run.path / "eval"
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    featured = run.main_eval()
    if featured is not None:
        folders.sort(key=lambda p: p.name != featured[0])
    for folder in folders:
        found = read_examples(folder)
        if found is not None and found.records:
            return found
    return None


def section_predictions(run: RunInfo, examples: int) -> Markup:
    """Prediction examples read from ``eval/<split>/examples/`` (or why there are none)."""
    if examples <= 0:
        return render("predictions.html", state="off")
    found = run_examples(run)
    if found is None:
        state = "no-checkpoint" if run.checkpoint is None else "missing"
        return render("predictions.html", state=state)
    from als4gan.draw.examples import examples_figure_png

    shown = [found.load(record).panels() for record in found.records[:examples]]
    index = found.index
    return render(
        "predictions.html",
        state="shown",
        image=examples_figure_png(shown, found.classes),
        rows=len(shown),
        split=found.split,
        folder=found.folder.name,
        checkpoint=Path(str(index.get("checkpoint") or "?")).name,
        step=index.get("step"),
        window=index.get("window"),
    )


def section_config(run: RunInfo) -> Markup:
    """The resolved configuration (config.yaml) and stage status."""
    text = yaml.safe_dump(run.config, sort_keys=False, default_flow_style=False)
    rows = [
        [stage, entry.get("state", "?"), entry.get("time", "")]
        for stage, entry in run.status.items()
        if isinstance(entry, dict)
    ]
    return render(
        "config.html",
        config_text=text if run.config else None,
        options=len(run.config),
        status_rows=rows,
    )


def _badges(run: RunInfo) -> list[dict[str, str]]:
    badges = [
        {"kind": "", "text": f"{key}: {run.config[key]}"}
        for key in ("method", "backbone", "arch")
        if run.config.get(key)
    ]
    badges.append({"kind": "", "text": f"labelled: {run.labelled_description()}"})
    if run.seed is not None:
        badges.append({"kind": "", "text": f"seed {run.seed}"})
    for stage, entry in run.status.items():
        if isinstance(entry, dict):
            kind = "done" if entry.get("state") == "done" else "warn"
            badges.append({"kind": kind, "text": f"{stage}: {entry.get('state')}"})
    return badges


def run_section(run: RunInfo, examples: int) -> Markup:
    """The card of one run with all its sections (``examples``: prediction examples shown)."""
    renderers: dict[str, Callable[[], str]] = {
        "curves": lambda: section_curves(run),
        "per-class-iou": lambda: section_per_class(run),
        "confusion-matrix": lambda: section_confusion(run),
        "selection": lambda: section_selection(run),
        "predictions": lambda: section_predictions(run, examples),
        "config": lambda: section_config(run),
    }
    sections = [
        (key, heading, guard(renderers[key], heading.lower())) for key, heading in RUN_SECTIONS
    ]
    return render(
        "run.html",
        name=run.name,
        path=str(run.path),
        badges=_badges(run),
        problems=run.problems,
        sections=sections,
    )
