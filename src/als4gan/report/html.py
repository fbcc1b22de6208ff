"""The self-contained HTML report: one page, plots embedded as data URIs, no external assets.

Each run contributes the same sections (curves, per-class IoU, confusion matrix, selected
images, predictions on validation images, configuration); a section whose inputs are missing
says what is missing and which command produces it, instead of failing the report.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from als4gan import __version__
from als4gan.data.encoding import ClassTable
from als4gan.io import atomic_write_text, utc_now
from als4gan.report import plots
from als4gan.report.runs import (
    Group,
    RunInfo,
    featured_split,
    group_by_condition,
    load_runs,
    metric_label,
    run_value,
)

log = logging.getLogger(__name__)

#: Every per-run section, in page order: (data-section id, heading).
RUN_SECTIONS = (
    ("curves", "Training curves"),
    ("per-class-iou", "Per-class IoU"),
    ("confusion-matrix", "Confusion matrix"),
    ("selection", "Selected images"),
    ("predictions", "Predictions on validation images"),
    ("config", "Resolved configuration"),
)
#: Embedded images wider than this are downscaled (keeps the page light).
MAX_EMBED_WIDTH = 1600
#: Embedded PNGs larger than this many bytes are re-encoded as JPEG.
MAX_PNG_BYTES = 1_500_000
#: JPEG quality of embedded photographs (contact sheets, prediction overlays).
JPEG_QUALITY = 88
#: Images shown in a contact sheet built from labeled.txt.
SHEET_LIMIT = 48


@dataclass
class ReportOptions:
    """What to compute for the report.

    Attributes:
        title: Page title.
        examples: Validation images predicted per run (0 = none).
        device: Torch device for the predictions.
        window: Sliding-window side for the predictions (``None`` = training crop).
    """

    title: str = "ALS4GAN report"
    examples: int = 3
    device: str = "cpu"
    window: int | None = None


# --------------------------------------------------------------------------- small helpers
def esc(value: Any) -> str:
    """HTML-escape ``str(value)``."""
    return html.escape(str(value), quote=True)


def slug(text: str) -> str:
    """An HTML id from a run name."""
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower() or "run"


def pct(value: Any, digits: int = 1) -> str:
    """A [0, 1] value as a percentage, or an en dash."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{100 * float(value):.{digits}f}"


def data_uri(data: bytes, photo: bool = False) -> str:
    """``data:`` URI of PNG/JPEG bytes, downscaled or re-encoded when very large.

    Args:
        data: PNG or JPEG bytes.
        photo: The image is mostly photographs (contact sheets, prediction overlays): embed it
            as JPEG, several times smaller than PNG for imagery (plots stay PNG, sharp).
    """
    mime = "image/png"
    image: Image.Image = Image.open(io.BytesIO(data))
    reencode = photo and image.format != "JPEG"
    if image.width > MAX_EMBED_WIDTH or len(data) > MAX_PNG_BYTES or reencode:
        image = image.convert("RGB")
        if image.width > MAX_EMBED_WIDTH:
            height = round(image.height * MAX_EMBED_WIDTH / image.width)
            image = image.resize((MAX_EMBED_WIDTH, height), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        if reencode or len(data) > MAX_PNG_BYTES:
            image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
            mime = "image/jpeg"
        else:
            image.save(buffer, format="PNG")
        data = buffer.getvalue()
    elif image.format == "JPEG":
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure(data: bytes, caption: str, alt: str, css: str = "", photo: bool = False) -> str:
    """An embedded image with its caption (``css``: extra class, e.g. ``half``).

    ``photo``: embed as JPEG (see :func:`data_uri`).
    """
    attribute = f' class="{css}"' if css else ""
    return (
        f'<figure{attribute}><img src="{data_uri(data, photo)}" alt="{esc(alt)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def note(text: str) -> str:
    """A highlighted remark (``text`` is HTML)."""
    return f'<p class="note">{text}</p>'


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    """An HTML table; cells are HTML; columns in ``numeric`` are right-aligned."""

    def cls(index: int) -> str:
        return ' class="num"' if index in numeric else ""

    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _guard(render: Callable[[], str], what: str) -> str:
    """Run a section renderer; a failure becomes a note in the page instead of no report."""
    try:
        return render()
    except Exception as err:  # the page must still be written; the reason is shown in it
        log.warning("report: %s failed: %s", what, err)
        return note(f"{esc(what)} could not be produced: {esc(type(err).__name__)}: {esc(err)}")


def _class_table(run: RunInfo, names: Sequence[str]) -> ClassTable | None:
    """Class colours from the run's evaluation (or ``None``)."""
    for metrics in run.evals.values():
        colors = metrics.get("class_colors")
        if isinstance(colors, list) and len(colors) == len(names):
            return ClassTable.from_dict({"names": list(names), "colors": colors})
    return None


# --------------------------------------------------------------------------- per-run sections
def section_curves(run: RunInfo) -> str:
    """Loss curves (small multiples) and the validation mIoU curve."""
    parts = []
    if run.train:
        steps = [float(r["step"]) for r in run.train]
        losses = {
            key: [
                float(r[key]) if isinstance(r.get(key), int | float) else math.nan
                for r in run.train
            ]
            for key in plots.LOSS_LABELS
            if any(isinstance(r.get(key), int | float) for r in run.train)
        }
        if losses:
            parts.append(
                figure(
                    plots.loss_curves_png(steps, losses),
                    f"Training losses over {len(steps)} logged iterations (faint: raw; bold: "
                    "moving average).",
                    "training losses",
                )
            )
        d_values = {
            key: [
                float(r[key]) if isinstance(r.get(key), int | float) else math.nan
                for r in run.train
            ]
            for key in plots.DISCRIMINATOR_LABELS
            if any(isinstance(r.get(key), int | float) for r in run.train)
        }
        if d_values:
            tau = run.config.get("threshold_st")
            parts.append(
                figure(
                    plots.discriminator_png(
                        steps, d_values, float(tau) if isinstance(tau, int | float) else None
                    ),
                    "Discriminator: mean D output for the ground truth and for the unlabelled "
                    "predictions (solid), and the share of unlabelled samples D scores above "
                    "0.5 / 0.6 / 0.7 / tau (dashed; above tau = used for self-training); "
                    "moving averages.",
                    "discriminator outputs",
                )
            )
    if run.val:
        steps = [float(r["step"]) for r in run.val]
        values = [
            float(r["miou"]) if isinstance(r.get("miou"), int | float) else math.nan
            for r in run.val
        ]
        best = run.best_val
        caption = "Validation mIoU during training"
        if best is not None:
            caption += f"; best {pct(best['miou'])} % at iteration {best['step']} (→ best.pt)"
        parts.append(
            figure(
                plots.curves_png(
                    [(run.name, steps, values)],
                    "Validation mIoU",
                    "mIoU",
                    percent=True,
                    markers=len(steps) <= 40,
                ),
                esc(caption) + ".",
                "validation mIoU",
                css="half",
            )
        )
    if not parts:
        return note(
            "No training records: <code>metrics.jsonl</code> is missing or empty "
            "(train with <code>als4gan train ... --out RUN_DIR</code>)."
        )
    return "".join(parts)


def section_per_class(run: RunInfo) -> str:
    """Per-class IoU bars and a table from the featured evaluation (else the best val record)."""
    featured = run.main_eval()
    if featured is not None:
        split, metrics = featured
        names = list(metrics.get("class_names") or [])
        iou = list(metrics.get("per_class_iou") or [])
        f1 = list(metrics.get("per_class_f1") or [None] * len(names))
        step = esc(metrics.get("step"))
        source = f"evaluation on the <b>{esc(split)}</b> split (checkpoint step {step})"
    else:
        best = run.best_val
        if best is None or not best.get("per_class_iou"):
            return note(
                "No per-class scores yet: run <code>als4gan evaluate --checkpoint RUN_DIR "
                "--split test</code>."
            )
        iou = list(best["per_class_iou"])
        names = list(best.get("class_names") or [f"class {i}" for i in range(len(iou))])
        f1 = [None] * len(names)
        source = (
            f"the best validation record during training (iteration {esc(best['step'])}); "
            "no <code>eval/</code> results yet"
        )
    if len(names) != len(iou):
        names = [f"class {i}" for i in range(len(iou))]
    table_ = _class_table(run, names)
    image = plots.per_class_bars_png(
        names,
        [(run.name, iou)],
        colors=table_.colors if table_ else None,
        title="Per-class IoU",
    )
    rows = [
        [esc(name), pct(iou[i]), pct(f1[i] if i < len(f1) else None)]
        for i, name in enumerate(names)
    ]
    return (
        '<div class="grid2">'
        + figure(
            image,
            f"IoU per class from {source}. n/a: class absent from labels and predictions.",
            "per-class IoU",
        )
        + "<div>"
        + table(["class", "IoU (%)", "F1 (%)"], rows, {1, 2})
        + "</div></div>"
    )


def section_confusion(run: RunInfo) -> str:
    """The confusion matrix of the featured evaluation."""
    featured = run.main_eval()
    if featured is None or not featured[1].get("confusion_matrix"):
        return note(
            "No confusion matrix: evaluate the run first (<code>als4gan evaluate --checkpoint "
            "RUN_DIR --split test</code>)."
        )
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
    facts = [
        f"split <b>{esc(split)}</b> ({esc(dataset.get('num_images', '?'))} images)",
        f"checkpoint <code>{esc(Path(str(metrics.get('checkpoint', '?'))).name)}</code> "
        f"(step {esc(metrics.get('step'))})",
        f"window {esc(metrics.get('window') or 'whole image')}",
    ]
    if metrics.get("crf"):
        facts.append("DenseCRF")
    chosen = metrics.get("selected_on")
    if isinstance(chosen, dict):
        facts.append(
            f"checkpoint chosen on <b>{esc(chosen.get('split'))}</b> among "
            f"{esc(chosen.get('candidates'))}"
        )
    return (
        '<div class="grid2 narrow">'
        + figure(
            image,
            "Rows: true class, columns: predicted class; each row sums to 100 %.",
            "confusion matrix",
        )
        + "<div>"
        + table(["metric", "value (%)"], rows, {1})
        + f'<p class="muted">{"; ".join(facts)}.</p></div></div>'
    )


def _selection_sheet_from_dataset(run: RunInfo, ids: Sequence[str]) -> bytes:
    """A contact sheet of the selected images read from the run's dataset."""
    from als4gan.evaluate import resolve_data_source
    from als4gan.report.images import contact_sheet, display_rgb, png_bytes

    source = resolve_data_source(None, None, {}, {}, run.config)
    split = str(run.config.get("split") or "train")
    dataset = source.build(split)
    tiles = []
    for sample_id in list(ids)[:SHEET_LIMIT]:
        image = dataset.load_image(sample_id)
        scaled = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 65535.0)
        tiles.append((sample_id, display_rgb(scaled, stretch=image.dtype != np.uint8)))
    return png_bytes(contact_sheet(tiles, columns=8, side=128))


def section_selection(run: RunInfo) -> str:
    """The selected images: selection/contact_sheet.png, else a sheet built from labeled.txt."""
    meta = run.selection_meta or {}
    facts = []
    if meta.get("strategy"):
        facts.append(f"strategy <b>{esc(meta['strategy'])}</b>")
    budget = meta.get("budget")
    if isinstance(budget, dict) and budget.get("formula"):
        facts.append(f"budget {esc(budget['formula'])}")
    if isinstance(meta.get("rounds"), list):
        facts.append(f"{len(meta['rounds'])} query round(s)")
    if meta.get("seed") is not None:
        facts.append(f"seed {esc(meta['seed'])}")
    rounds = meta.get("rounds")
    if isinstance(rounds, list) and rounds and isinstance(rounds[0], dict):
        auto = rounds[0].get("auto")
        if isinstance(auto, dict) and auto.get("reason"):
            facts.append(f"chosen by <code>--strategy auto</code>: {esc(auto['reason'])}")
    header = f'<p class="muted">{"; ".join(facts)}.</p>' if facts else ""
    return _selection_images(run, header) + _embedding_map(run)


def _embedding_map(run: RunInfo) -> str:
    """The PCA map of the pool's pretrained embeddings (typiclust, probcover, initial sets)."""
    if run.embedding_map is None:
        return ""
    return figure(
        run.embedding_map.read_bytes(),
        "The pool on the two principal axes of its pretrained embeddings, the chosen images "
        "in red, numbered in pick order (<code>selection/embedding_map.png</code>): picks "
        "spread over the map cover the pool.",
        "map of the pool's embeddings with the chosen images",
    )


def _selection_images(run: RunInfo, header: str) -> str:
    """The contact sheet part of :func:`section_selection`."""
    if run.contact_sheet is not None:
        count = f"{len(run.selection_ids)} images" if run.selection_ids is not None else "images"
        return header + figure(
            run.contact_sheet.read_bytes(),
            f"The {count} chosen for labelling (<code>selection/contact_sheet.png</code>).",
            "selected images",
            photo=True,
        )
    if run.selection_ids:
        ids = run.selection_ids
        more = f" (first {SHEET_LIMIT} shown)" if len(ids) > SHEET_LIMIT else ""
        return header + _guard(
            lambda: figure(
                _selection_sheet_from_dataset(run, ids),
                f"{len(ids)} images listed in <code>selection/labeled.txt</code>{more}.",
                "selected images",
                photo=True,
            ),
            "the contact sheet",
        )
    ratio = run.config.get("labeled_ratio")
    if ratio is not None:
        text = note(
            f"No active selection for this run: it trained on a <b>random subset</b> of "
            f"{pct(ratio, 3).rstrip('0').rstrip('.')} % of the training images "
            f"(seed {esc(run.config.get('seed'))})."
        )
        if run.trained_ids:
            ids = run.trained_ids
            more = f" (first {SHEET_LIMIT} shown)" if len(ids) > SHEET_LIMIT else ""
            text += _guard(
                lambda: figure(
                    _selection_sheet_from_dataset(run, ids),
                    f"The {len(ids)} randomly drawn labelled images "
                    f"(<code>train_labeled.txt</code>){more}.",
                    "randomly drawn labelled images",
                    photo=True,
                ),
                "the contact sheet",
            )
        return text
    return note(
        "No selection found: this run folder has no <code>selection/labeled.txt</code> "
        "(run <code>als4gan select ... --out RUN_DIR</code> to make one)."
    )


def _evenly_spaced(items: Sequence[str], count: int) -> list[str]:
    if count >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / max(1, count - 1))] for i in range(count)]


def prediction_examples_png(run: RunInfo, options: ReportOptions) -> tuple[bytes, str]:
    """Image | ground truth | prediction for a few validation images, with the best checkpoint.

    Returns:
        (PNG bytes, caption HTML).
    """
    import torch
    from matplotlib.patches import Patch

    from als4gan.checkpoint import load_segmentation_model
    from als4gan.evaluate import (
        EvalSettings,
        check_compatible,
        predict_image_batch,
        resolve_data_source,
        resolve_window,
    )
    from als4gan.report.images import display_rgb, fit_size, resize_nearest
    from als4gan.runtime import resolve_device

    assert run.checkpoint is not None
    device = resolve_device(options.device)
    model, meta = load_segmentation_model(run.checkpoint, device)
    source = resolve_data_source(None, None, {}, meta, run.config)
    split = str(run.config.get("val_split") or "val")
    dataset = source.build(split)
    check_compatible(meta.get("model_spec") or {}, dataset, str(run.checkpoint), meta)
    window = resolve_window(options.window, meta)
    settings = EvalSettings(window=window, device=device, batch_size=2)
    ids = _evenly_spaced(dataset.ids, options.examples)
    table_ = dataset.classes
    rows = len(ids)
    fig = plots.new_figure(10.5, 3.4 * rows + 0.6)
    axes = np.atleast_2d(fig.subplots(rows, 3, squeeze=False))
    titles = ("image", "ground truth", "prediction")
    for row, sample_id in enumerate(ids):
        sample = dataset[dataset.ids.index(sample_id)]
        image = sample["image"]
        probs = predict_image_batch(model, image[None], dataset.num_classes, settings)
        prediction = probs[0].argmax(dim=0).numpy().astype(np.uint8)
        mask = sample["mask"].numpy()
        valid = mask != table_.ignore_index
        accuracy = float((prediction[valid] == mask[valid]).mean()) if valid.any() else math.nan
        height, width = fit_size(mask.shape[0], mask.shape[1], 512)
        rgb = display_rgb(np.moveaxis(image.numpy(), 0, -1))
        panels = (
            np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BOX)),
            table_.colorize(resize_nearest(mask, height, width)),
            table_.colorize(resize_nearest(prediction, height, width)),
        )
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=11)
        axes[row, 0].set_ylabel(sample_id, fontsize=9)
        axes[row, 2].set_xlabel(f"pixel accuracy {pct(accuracy)} %", fontsize=9)
    handles = [
        Patch(
            facecolor=(color[0] / 255, color[1] / 255, color[2] / 255),
            edgecolor="#374151",
            label=name,
        )
        for name, color in zip(table_.names, table_.colors, strict=True)
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncol=min(6, len(handles)), frameon=False
    )
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    caption = (
        f"{rows} image(s) of the <b>{esc(split)}</b> split predicted by "
        f"<code>{esc(run.checkpoint.name)}</code> (step {esc(meta.get('step'))}), "
        f"{'sliding windows of ' + str(window) + ' px' if window else 'whole images'}. "
        "Black in the ground truth: ignored pixels."
    )
    return plots.figure_png(fig), caption


def section_predictions(run: RunInfo, options: ReportOptions) -> str:
    """Prediction examples (or why there are none)."""
    if options.examples <= 0:
        return note("Prediction examples were switched off (<code>--examples 0</code>).")
    if run.checkpoint is None:
        return note(
            "No checkpoint in <code>checkpoints/</code>: nothing to predict with "
            "(train with <code>als4gan train ... --out RUN_DIR</code>)."
        )

    def render() -> str:
        image, caption = prediction_examples_png(run, options)
        return figure(image, caption, "predictions on validation images", photo=True)

    return _guard(render, "prediction examples")


def section_config(run: RunInfo) -> str:
    """The resolved configuration (config.yaml) and stage status."""
    parts = []
    if run.config:
        text = yaml.safe_dump(run.config, sort_keys=False, default_flow_style=False)
        parts.append(
            f"<details open><summary>config.yaml ({len(run.config)} options)</summary>"
            f"<pre>{esc(text)}</pre></details>"
        )
    else:
        parts.append(note("No <code>config.yaml</code> in this run folder."))
    if run.status:
        rows = [
            [esc(stage), esc(entry.get("state", "?")), esc(entry.get("time", ""))]
            for stage, entry in run.status.items()
            if isinstance(entry, dict)
        ]
        parts.append(table(["stage", "state", "time (UTC)"], rows, set()))
    return "".join(parts)


def run_section(run: RunInfo, options: ReportOptions) -> str:
    """The card of one run with all its sections."""
    badges = []
    for key in ("method", "backbone", "arch"):
        if run.config.get(key):
            badges.append(f'<span class="badge">{esc(key)}: {esc(run.config[key])}</span>')
    badges.append(f'<span class="badge">labelled: {esc(run.labelled_description())}</span>')
    if run.seed is not None:
        badges.append(f'<span class="badge">seed {esc(run.seed)}</span>')
    for stage, entry in run.status.items():
        if isinstance(entry, dict):
            kind = "done" if entry.get("state") == "done" else "warn"
            badges.append(
                f'<span class="badge {kind}">{esc(stage)}: {esc(entry.get("state"))}</span>'
            )
    renderers: dict[str, Callable[[], str]] = {
        "curves": lambda: section_curves(run),
        "per-class-iou": lambda: section_per_class(run),
        "confusion-matrix": lambda: section_confusion(run),
        "selection": lambda: section_selection(run),
        "predictions": lambda: section_predictions(run, options),
        "config": lambda: section_config(run),
    }
    body = []
    if run.problems:
        body.append(
            note("Some files could not be read: " + "; ".join(esc(p) for p in run.problems))
        )
    for key, heading in RUN_SECTIONS:
        body.append(
            f'<div data-section="{key}"><h3>{esc(heading)}</h3>'
            f"{_guard(renderers[key], heading.lower())}</div>"
        )
    return (
        f'<section class="card" id="run-{slug(run.name)}" data-section="run">'
        f"<h2>{esc(run.name)}</h2>"
        f'<p class="sub"><code>{esc(run.path)}</code></p>'
        f'<div class="badges">{"".join(badges)}</div>' + "".join(body) + "</section>"
    )


# --------------------------------------------------------------------------- comparison
def _runs_table(runs: Sequence[RunInfo]) -> str:
    splits = sorted({split for run in runs for split in run.evals}, key=lambda s: (s != "test", s))
    headers = ["run", "method", "backbone", "labelled", "seed", "iterations", "best val mIoU (%)"]
    for split in splits:
        headers += [f"{split} mIoU (%)", f"{split} pixel acc. (%)"]
    rows = []
    for run in runs:
        best = run.best_val
        best_text = (
            f"{pct(best['miou'])} <span class='muted'>@{esc(best['step'])}</span>" if best else "–"
        )
        iterations = run.config.get("iterations")
        last_step = run.train[-1]["step"] if run.train else None
        iters = (
            f"{last_step}/{iterations}"
            if last_step and iterations and last_step != iterations
            else esc(iterations or last_step or "–")
        )
        row = [
            f'<a href="#run-{slug(run.name)}">{esc(run.name)}</a>',
            esc(run.config.get("method", "–")),
            esc(run.config.get("backbone", "–")),
            esc(run.labelled_description()),
            esc(run.seed if run.seed is not None else "–"),
            iters,
            best_text,
        ]
        for split in splits:
            metrics = run.evals.get(split, {})
            row += [pct(metrics.get("miou"), 2), pct(metrics.get("pixel_accuracy"), 2)]
        rows.append(row)
    numeric = set(range(4, len(headers)))
    return table(headers, rows, numeric)


def _groups_table(groups: Sequence[Group], label: str) -> str:
    rows = []
    for group in groups:
        seeds = ", ".join(str(run.seed) for run in group.runs if run.seed is not None) or "–"
        low = min(group.values) if group.values else math.nan
        high = max(group.values) if group.values else math.nan
        spread = f" ± {pct(group.spread, 2)}" if len(group.values) > 1 else ""
        rows.append(
            [
                esc(group.label),
                str(len(group.runs)),
                esc(seeds),
                (
                    f"<b>{pct(group.mean, 2)}</b>{spread}"
                    + (
                        f" <span class='muted'>(n={len(group.values)})</span>"
                        if len(group.values) != len(group.runs)
                        else ""
                    )
                    if group.values
                    else "<span class='muted'>not evaluated</span>"
                ),
                f"{pct(low, 2)} – {pct(high, 2)}" if len(group.values) > 1 else "–",
            ]
        )
    return table(
        ["condition", "runs", "seeds", f"mean {label} (%) ± sd", "range (%)"],
        rows,
        {1, 3, 4},
    )


def comparison_section(runs: Sequence[RunInfo]) -> str:
    """Table of every run; for several runs, seed groups (mean ± sd) and overlaid curves."""
    parts = [_runs_table(runs)]
    if len(runs) == 1:
        parts.append('<p class="muted">One run: add more run folders to compare them.</p>')
        return "".join(parts)
    split = featured_split(runs)
    label = metric_label(split)
    groups = group_by_condition(runs, split)
    parts.append(f"<h3>Runs grouped by condition (differing only by seed): {esc(label)}</h3>")
    missing = [run.name for run in runs if run_value(run, split) is None]
    if missing:
        parts.append(
            note(
                f"{len(missing)} run(s) have no {esc(label)} and are left out of the means: "
                f"{esc(', '.join(missing))}"
                + (
                    " (run <code>als4gan evaluate --checkpoint RUN_DIR --split "
                    f"{esc(split)}</code>)."
                    if split
                    else "."
                )
            )
        )
    parts.append(_groups_table(groups, label))
    charts = []
    scored = [g for g in groups if g.values]
    if scored:
        charts.append(
            figure(
                plots.group_bars_png(
                    [g.label for g in scored],
                    [g.mean for g in scored],
                    [g.spread for g in scored],
                    [len(g.values) for g in scored],
                    f"{label} per condition",
                    "mIoU",
                ),
                "Mean over seeds; whiskers: one standard deviation (when n > 1).",
                "mIoU per condition",
            )
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
    if curves:
        charts.append(
            figure(
                plots.curves_png(curves, "Validation mIoU of every run", "mIoU", percent=True),
                "Validation mIoU during training (the split that chooses best.pt).",
                "validation mIoU of every run",
            )
        )
    if charts:
        parts.append('<div class="grid2">' + "".join(charts) + "</div>")
    return "".join(parts)


def overview_stats(runs: Sequence[RunInfo]) -> str:
    """Headline numbers: what was run (no single-run winner: see the comparison above)."""
    datasets = sorted({str(run.config.get("dataset", "?")) for run in runs})
    seeds = sorted({run.seed for run in runs if isinstance(run.seed, int)})
    evaluated = sum(1 for run in runs if run.evals)
    stats = [
        (str(len(runs)), "runs"),
        (", ".join(datasets), "dataset"),
        (", ".join(map(str, seeds)) or "–", "seeds"),
        (f"{evaluated}/{len(runs)}", "runs evaluated"),
    ]
    cells = "".join(
        f'<div class="stat"><div class="value">{esc(value)}</div>'
        f'<div class="label">{esc(label)}</div></div>'
        for value, label in stats
    )
    return f'<div class="stats">{cells}</div>'


def cross_run_sections(runs: Sequence[RunInfo], options: ReportOptions) -> list[str]:
    """The sections that compare runs (see :mod:`als4gan.report.crossrun`), first in the page."""
    from als4gan.report import crossrun

    pool = crossrun.pool_class_share(runs)
    renderers: dict[str, Callable[[], str]] = {
        "answer": lambda: crossrun.answer_section(runs),
        "per-class-across": lambda: crossrun.per_class_section(runs, pool),
        "class-histograms": lambda: crossrun.class_histogram_section(runs, pool),
        "side-by-side": lambda: crossrun.side_by_side_section(
            runs, options.examples, options.device
        ),
    }
    return [
        f'<section class="card" id="{key}" data-section="{key}"><h2>{esc(heading)}</h2>'
        f"{_guard(renderers[key], heading.lower())}</section>"
        for key, heading in crossrun.CROSS_SECTIONS
    ]


# --------------------------------------------------------------------------- page
def render_report(runs: Sequence[RunInfo], options: ReportOptions) -> str:
    """The whole HTML page."""
    from als4gan.runtime import progress

    template = string.Template(
        resources.files("als4gan.report").joinpath("template.html").read_text(encoding="utf-8")
    )
    style = resources.files("als4gan.report").joinpath("style.css").read_text(encoding="utf-8")
    sections = cross_run_sections(runs, options)
    sections += [
        '<section class="card" id="overview" data-section="overview">'
        "<h2>Overview</h2>"
        '<p class="sub">Featured scores come from <code>eval/test</code> when a run has one, '
        "otherwise from its other evaluations or its best validation record.</p>"
        + overview_stats(runs)
        + "</section>",
        '<section class="card" id="comparison" data-section="comparison">'
        "<h2>All runs</h2>"
        '<p class="sub">Every run side by side.</p>'
        + _guard(lambda: comparison_section(runs), "comparison")
        + "</section>",
    ]
    with progress(runs, desc="report", unit="run") as bar:
        for run in bar:
            sections.append(run_section(run, options))
    from als4gan.report.crossrun import CROSS_SECTIONS

    nav = [f'<a href="#{key}">{esc(heading.lower())}</a>' for key, heading in CROSS_SECTIONS]
    nav += ['<a href="#overview">overview</a>', '<a href="#comparison">all runs</a>']
    nav += [f'<a href="#run-{slug(run.name)}">{esc(run.name)}</a>' for run in runs]
    created = utc_now()
    return template.substitute(
        title=esc(options.title),
        subtitle=esc(f"{len(runs)} run(s) · generated {created}"),
        nav="".join(nav),
        style=style,
        body="\n".join(sections),
        version=esc(__version__),
        created=esc(created),
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
