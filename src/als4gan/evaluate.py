"""Honest evaluation: one confusion matrix per split at label resolution, checkpoints chosen on val.

The metrics of a split come from a single confusion matrix accumulated over all its images at
the resolution of the labels: every image is predicted whole (sliding windows with blended
overlaps when it is larger than the window), never padded and squeezed onto its label (defect 5
of the reference code, docs/method.md). :func:`select_checkpoint` scores every checkpoint of a
run on the validation split and only the winner is then evaluated on the test split (defect 3: the
reference code picked its checkpoint on the test split).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from als4gan.checkpoint import load_checkpoint, load_segmentation_model
from als4gan.data import SegmentationDataset
from als4gan.evalexamples import (
    EXAMPLE_COUNT,
    Example,
    ExampleCollector,
    evenly_spaced,
    write_examples,
)
from als4gan.evalsetup import (
    CROP_KEYS,
    DATASET_OPTION_KEYS,
    FALLBACK_WINDOW,
    DataSource,
    check_compatible,
    check_preprocessing,
    list_run_checkpoints,
    read_run_config,
    resolve_data_source,
    resolve_regime,
    resolve_window,
    run_dir_of,
    training_crop,
)
from als4gan.inference import dense_crf, predict_probs
from als4gan.io import atomic_write_text, utc_now, write_json
from als4gan.metrics import ConfusionMatrix
from als4gan.runtime import autocast, progress

log = logging.getLogger(__name__)

#: Checkpoint names that are copies of a step checkpoint.
ALIAS_NAMES = ("best", "latest")

#: Names of :mod:`als4gan.evalsetup` that callers import from here.
__all__ = [
    "ALIAS_NAMES",
    "CROP_KEYS",
    "DATASET_OPTION_KEYS",
    "FALLBACK_WINDOW",
    "DataSource",
    "EvalResult",
    "EvalSettings",
    "check_compatible",
    "check_preprocessing",
    "evaluate_checkpoint",
    "evaluate_model",
    "list_run_checkpoints",
    "metrics_markdown",
    "predict_image_batch",
    "read_run_config",
    "resolve_data_source",
    "resolve_regime",
    "resolve_window",
    "run_dir_of",
    "select_checkpoint",
    "selection_markdown",
    "to_uint8_rgb",
    "training_crop",
    "write_evaluation",
]


class EvalResult(dict[str, Any]):
    """The metrics of one evaluation (the mapping written to ``metrics.json``).

    Attributes:
        examples: Prediction examples kept during the evaluation; written beside the metrics
            by :func:`write_evaluation`, never into ``metrics.json``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.examples: list[Example] = []
        self.classes: Any = None


@dataclass
class EvalSettings:
    """How predictions are made for evaluation.

    Attributes:
        window: Sliding-window side; ``None`` = whole images in one pass.
        overlap: Fraction of overlap between neighbouring windows.
        batch_size: Windows (or same-sized images) per forward pass.
        device: Torch device.
        amp: Whether bf16 autocast is used.
        channels_last: Whether model and inputs use the channels_last memory format.
        crf: Whether DenseCRF post-processing is applied.
        crf_iterations: Mean-field iterations of the CRF.
        num_workers: DataLoader worker processes reading images.
    """

    window: int | None = FALLBACK_WINDOW
    overlap: float = 1 / 3
    batch_size: int = 4
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = False
    channels_last: bool = False
    crf: bool = False
    crf_iterations: int = 5
    num_workers: int = 0


# --------------------------------------------------------------------------- core loop
def _image_batches(
    dataset: SegmentationDataset, window: int | None, batch_size: int, num_workers: int
) -> Iterator[list[dict[str, Any]]]:
    """Samples in order; consecutive same-sized images that need no windows share a batch."""
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers)
    pending: list[dict[str, Any]] = []
    for sample in loader:
        height, width = sample["image"].shape[-2:]
        whole = window is None or (height <= window and width <= window)
        if pending and (
            not whole
            or pending[0]["image"].shape != sample["image"].shape
            or len(pending) >= batch_size
        ):
            yield pending
            pending = []
        if not whole:
            yield [sample]
        else:
            pending.append(sample)
    if pending:
        yield pending


def to_uint8_rgb(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) image in [0, 1] -> (H, W, 3) ``uint8`` (first three bands; grey repeated)."""
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().cpu().numpy()
    array = np.moveaxis(array, 0, -1)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


@torch.inference_mode()
def predict_image_batch(
    model: nn.Module, images: torch.Tensor, num_classes: int, settings: EvalSettings
) -> torch.Tensor:
    """Class probabilities (B, C, H, W) on the CPU for a batch of same-sized images in [0, 1]."""
    inputs = images.to(settings.device, non_blocking=True)
    if settings.channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with autocast(settings.device, settings.amp):
        probs = predict_probs(
            model, inputs, num_classes, settings.window, settings.overlap, settings.batch_size
        )
    return probs.float().cpu()


def evaluate_model(
    model: nn.Module,
    dataset: SegmentationDataset,
    settings: EvalSettings,
    desc: str = "evaluate",
    examples: ExampleCollector | None = None,
) -> ConfusionMatrix:
    """Accumulate the confusion matrix of ``model`` over every image of ``dataset``.

    Args:
        model: Segmentation network in eval mode on ``settings.device`` (logits at input size).
        dataset: Dataset yielding full images and masks at label resolution.
        settings: Windowing, batching, device and post-processing.
        desc: Progress-bar label.
        examples: Keeps the predictions of a few chosen images (the ones scored).

    Returns:
        The confusion matrix (rows = ground truth, columns = prediction).
    """
    num_classes = dataset.num_classes
    matrix = ConfusionMatrix(num_classes, dataset.classes.ignore_index)
    with progress(total=len(dataset), desc=desc, unit="img") as bar:
        for batch in _image_batches(
            dataset, settings.window, settings.batch_size, settings.num_workers
        ):
            images = torch.stack([sample["image"] for sample in batch])
            probs = predict_image_batch(model, images, num_classes, settings)
            for index, sample in enumerate(batch):
                if settings.crf:
                    refined = dense_crf(
                        probs[index].numpy(),
                        to_uint8_rgb(sample["image"]),
                        iterations=settings.crf_iterations,
                    )
                    prediction = torch.from_numpy(refined.argmax(axis=0))
                else:
                    prediction = probs[index].argmax(dim=0)
                matrix.update(prediction, sample["mask"])
                if examples is not None:
                    examples.offer(sample, prediction)
            bar.update(len(batch))
    return matrix


def evaluate_checkpoint(
    checkpoint: str | Path,
    source: DataSource,
    split: str,
    settings: EvalSettings,
    window: int | None = None,
    overlap: float | None = None,
    examples: int = EXAMPLE_COUNT,
) -> EvalResult:
    """Load a checkpoint, evaluate it on ``split`` and return the metrics with their context.

    Args:
        checkpoint: Checkpoint file or run folder.
        source: Dataset to read.
        split: Split name or id-list path.
        settings: Prediction settings; its ``window`` and ``overlap`` are replaced by the
            regime of :func:`resolve_regime` (by default the one validation used in training).
        window: Explicit ``--window`` (``None`` = from the checkpoint; 0 = whole images).
        overlap: Explicit ``--overlap`` (``None`` = from the checkpoint).
        examples: Images of the split (spread evenly over its ids) whose predictions are kept
            in :attr:`EvalResult.examples` for :func:`write_evaluation`; 0 = none.

    Returns:
        The metrics of :func:`als4gan.metrics.metrics_from_confusion` plus ``split``,
        ``dataset``, ``checkpoint``, ``step``, ``window``, ``overlap``, ``regime`` (where the
        window and overlap came from, see :func:`resolve_regime`), ``crf``,
        ``seconds``.
    """
    model, meta = load_segmentation_model(checkpoint, settings.device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    dataset = source.build(split)
    check_compatible(meta.get("model_spec") or {}, dataset, meta["path"], meta)
    check_preprocessing(dataset, meta["path"], meta)
    regime, regime_source = resolve_regime(window, overlap, meta)
    run_settings = dataclasses.replace(settings, window=regime.window, overlap=regime.overlap)
    started = time.perf_counter()
    step = meta.get("step")
    label = f"{split} ({Path(meta['path']).name}, step {step})"
    collector = ExampleCollector(evenly_spaced(dataset.ids, examples), dataset.classes.ignore_index)
    matrix = evaluate_model(model, dataset, run_settings, desc=label, examples=collector)
    result = EvalResult(matrix.compute(dataset.classes.names))
    result.examples = collector.examples()
    result.classes = dataset.classes
    result.update(
        {
            "class_colors": [list(color) for color in dataset.classes.colors],
            "split": split,
            "dataset": {**source.to_dict(), "num_images": len(dataset)},
            "checkpoint": meta["path"],
            "step": step,
            "window": run_settings.window,
            "overlap": run_settings.overlap,
            "regime": regime_source,
            "crf": run_settings.crf,
            "seconds": round(time.perf_counter() - started, 3),
            "created": utc_now(),
        }
    )
    return result


def _score(result: Mapping[str, Any]) -> float:
    value = result.get("miou")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else -math.inf


def _checkpoint_step(path: Path) -> int | None:
    """The training step stored in a checkpoint (loaded on the CPU)."""
    step = load_checkpoint(path).get("step")
    return int(step) if isinstance(step, int | float) else None


def select_checkpoint(
    checkpoints: Sequence[Path],
    source: DataSource,
    val_split: str,
    settings: EvalSettings,
    window: int | None = None,
    overlap: float | None = None,
) -> tuple[Path, list[dict[str, Any]]]:
    """Score every checkpoint on the validation split and return the best one.

    Files holding the same training step (``best.pt`` is a copy of a step checkpoint) are
    scored once. Ties keep the earliest step.

    Returns:
        (path of the checkpoint with the highest validation mIoU, one record per checkpoint
        file: ``checkpoint``, ``step``, ``miou``, ``pixel_accuracy``, ``same_as``).
    """
    records: list[dict[str, Any]] = []
    scored: dict[int, dict[str, Any]] = {}
    steps = {path: _checkpoint_step(path) for path in checkpoints}
    # By step; at equal steps, step files before their aliases (best.pt, latest.pt).
    ordered = sorted(
        checkpoints,
        key=lambda p: (
            steps[p] if steps[p] is not None else math.inf,
            p.stem in ALIAS_NAMES,
            p.name,
        ),
    )
    for path in ordered:
        step = steps[path]
        if step is not None and step in scored:
            first = scored[step]
            records.append({**first, "checkpoint": str(path), "same_as": first["checkpoint"]})
            continue
        result = evaluate_checkpoint(path, source, val_split, settings, window, overlap, examples=0)
        record = {
            "checkpoint": str(path),
            "step": step,
            "miou": result["miou"],
            "pixel_accuracy": result["pixel_accuracy"],
            "same_as": None,
        }
        records.append(record)
        if step is not None:
            scored[step] = record
    candidates = [r for r in records if r["same_as"] is None]
    best = max(
        candidates,
        key=lambda r: (_score(r), -(r["step"] if r["step"] is not None else math.inf)),
    )
    return Path(best["checkpoint"]), records


# --------------------------------------------------------------------------- outputs
def _fmt(value: Any, percent: bool = True) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{100 * float(value):.2f}" if percent else str(value)


def _window_text(result: Mapping[str, Any]) -> str:
    window, overlap = result.get("window"), result.get("overlap")
    if not window:
        text = "whole image"
    elif isinstance(overlap, int | float):
        text = f"{window} px (overlap {overlap:.2f})"
    else:
        text = f"{window} px"
    regime = result.get("regime")
    if regime == "recorded":
        text += ", as in validation during training"
    elif regime == "override":
        text += ", overriding the validation regime recorded in the checkpoint"
    return text


def metrics_markdown(result: Mapping[str, Any]) -> str:
    """A Markdown summary: headline metrics and a per-class table (values in %)."""
    dataset = result.get("dataset") or {}
    lines = [
        f"# Evaluation on '{result.get('split')}' ({dataset.get('name', '?')})",
        "",
        f"- checkpoint: `{result.get('checkpoint')}` (step {result.get('step')})",
        f"- images: {dataset.get('num_images', '?')}, labelled pixels: {result.get('pixels')}",
        f"- window: {_window_text(result)}, CRF: {bool(result.get('crf'))}",
        "",
        "| metric | value (%) |",
        "|---|---:|",
        f"| mIoU | {_fmt(result.get('miou'))} |",
        f"| pixel accuracy | {_fmt(result.get('pixel_accuracy'))} |",
        f"| mean class accuracy | {_fmt(result.get('mean_class_accuracy'))} |",
        f"| frequency-weighted IoU | {_fmt(result.get('fwiou'))} |",
        "",
        "| class | IoU (%) | F1 (%) | accuracy (%) | pixels |",
        "|---|---:|---:|---:|---:|",
    ]
    matrix = np.asarray(result.get("confusion_matrix") or [], dtype=np.int64)
    names = list(result.get("class_names") or [])
    for index, name in enumerate(names):
        pixels = int(matrix[index].sum()) if matrix.size else 0
        lines.append(
            f"| {name} | {_fmt(result['per_class_iou'][index])} | "
            f"{_fmt(result['per_class_f1'][index])} | "
            f"{_fmt(result['per_class_accuracy'][index])} | {pixels} |"
        )
    selection = result.get("selected_on")
    if isinstance(selection, Mapping):
        lines += [
            "",
            f"Checkpoint chosen on split '{selection.get('split')}' "
            f"(validation mIoU {_fmt(selection.get('miou'))} %) among "
            f"{selection.get('candidates')} checkpoints.",
        ]
    return "\n".join(lines) + "\n"


def selection_markdown(records: Sequence[Mapping[str, Any]], val_split: str, best: Path) -> str:
    """Markdown table of the validation score of every checkpoint."""
    lines = [
        f"# Checkpoints scored on '{val_split}'",
        "",
        "| checkpoint | step | mIoU (%) | pixel accuracy (%) | chosen |",
        "|---|---:|---:|---:|:---:|",
    ]
    for record in records:
        name = Path(str(record["checkpoint"])).name
        same = f" (= {Path(str(record['same_as'])).name})" if record.get("same_as") else ""
        chosen = "✓" if Path(str(record["checkpoint"])) == best else ""
        lines.append(
            f"| {name}{same} | {record.get('step')} | {_fmt(record.get('miou'))} | "
            f"{_fmt(record.get('pixel_accuracy'))} | {chosen} |"
        )
    return "\n".join(lines) + "\n"


def write_evaluation(out_dir: str | Path, result: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``metrics.json``, ``metrics.md`` and ``confusion_matrix.png`` into ``out_dir``.

    The prediction examples of an :class:`EvalResult` are written too (``examples.json`` and
    ``examples/``, see :mod:`als4gan.evalexamples`).

    Returns:
        Name -> path of each file written.
    """
    from als4gan.draw.plots import confusion_matrix_png
    from als4gan.io import atomic_write_bytes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "metrics.json",
        "markdown": out / "metrics.md",
        "confusion": out / "confusion_matrix.png",
    }
    title = f"{result.get('split')} — mIoU {_fmt(result.get('miou'))} %"
    atomic_write_bytes(
        paths["confusion"],
        confusion_matrix_png(
            np.asarray(result["confusion_matrix"]), list(result["class_names"]), title=title
        ),
    )
    atomic_write_text(paths["markdown"], metrics_markdown(result))
    write_json(paths["json"], dict(result))
    examples = getattr(result, "examples", None)
    classes = getattr(result, "classes", None)
    if examples and classes is not None:
        paths["examples"] = write_examples(out, examples, classes, result)
    return paths
