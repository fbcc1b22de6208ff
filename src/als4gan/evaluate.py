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

from als4gan.checkpoint import (
    CHECKPOINT_DIR,
    load_checkpoint,
    load_segmentation_model,
    recorded_classes,
    recorded_preprocessing,
)
from als4gan.data import SegmentationDataset, build_dataset
from als4gan.errors import CheckpointError, ConfigError
from als4gan.inference import dense_crf, predict_probs
from als4gan.io import atomic_write_text, read_yaml, utc_now, write_json
from als4gan.metrics import ConfusionMatrix
from als4gan.regime import DEFAULT_OVERLAP, InferenceRegime, recorded_regime
from als4gan.runtime import autocast, progress

log = logging.getLogger(__name__)

#: Window side used when neither ``--window`` nor the checkpoint's training crop is known.
FALLBACK_WINDOW = 512
#: Config keys (in order) that may hold the training crop size.
CROP_KEYS = ("crop_size", "crop", "input_size")
#: Checkpoint names that are copies of a step checkpoint.
ALIAS_NAMES = ("best", "latest")
#: Dataset options a run's config may record and that the dataset classes accept.
DATASET_OPTION_KEYS = ("classes_file", "bands")


@dataclass
class DataSource:
    """Which dataset to read: registry name, root folder and dataset options."""

    name: str
    root: str
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, split: str) -> SegmentationDataset:
        """The dataset for ``split``."""
        return build_dataset(self.name, self.root, split, **self.options)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"name": self.name, "root": self.root, "options": dict(self.options)}


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


# --------------------------------------------------------------------------- run folders
def run_dir_of(checkpoint: str | Path) -> Path:
    """The run folder a checkpoint belongs to (``RUN/checkpoints/x.pt`` -> ``RUN``).

    A run folder is returned as is; a checkpoint file outside a ``checkpoints/`` folder gives
    its own folder.
    """
    path = Path(checkpoint)
    if path.is_dir():
        return path
    if path.parent.name == CHECKPOINT_DIR:
        return path.parent.parent
    return path.parent


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """``RUN_DIR/config.yaml`` as a dict (empty when absent or not a mapping)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return {}
    data = read_yaml(path)
    return data if isinstance(data, dict) else {}


def list_run_checkpoints(run_dir: str | Path) -> list[Path]:
    """Every ``*.pt`` under ``RUN_DIR/checkpoints/``, sorted by name.

    Raises:
        CheckpointError: If there is none.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    files = sorted(folder.glob("*.pt")) if folder.is_dir() else []
    if not files:
        raise CheckpointError(
            f"{folder} holds no *.pt checkpoints; --all-checkpoints needs a run folder written "
            "by 'als4gan train --out RUN_DIR'"
        )
    return files


def _dataset_section(config: Mapping[str, Any]) -> dict[str, Any]:
    """Dataset name/root/options from a run config (flat keys or a nested ``dataset`` map)."""
    found: dict[str, Any] = {}
    nested = config.get("dataset")
    if isinstance(nested, Mapping):
        if nested.get("name"):
            found["name"] = str(nested["name"])
        if nested.get("root"):
            found["root"] = str(nested["root"])
        options = nested.get("options")
        if isinstance(options, Mapping):
            found.update({key: options[key] for key in DATASET_OPTION_KEYS if key in options})
    elif isinstance(nested, str) and nested:
        found["name"] = nested
    for key in ("root", "data_root"):
        if config.get(key) and "root" not in found:
            found["root"] = str(config[key])
    for key in DATASET_OPTION_KEYS:
        if config.get(key) not in (None, "", []):
            found[key] = config[key]
    return found


def resolve_data_source(
    name: str | None,
    root: str | None,
    options: Mapping[str, Any],
    checkpoint_meta: Mapping[str, Any],
    run_config: Mapping[str, Any] | None = None,
) -> DataSource:
    """Dataset to evaluate on: explicit values first, then the run's config, then the checkpoint.

    Args:
        name: ``--dataset`` (``None`` when not given).
        root: ``--root`` (``None`` when not given).
        options: Dataset options given on the command line (``classes_file``, ``bands``).
        checkpoint_meta: Checkpoint metadata (``config`` and ``dataset`` sections are read).
        run_config: ``RUN_DIR/config.yaml`` when known.

    Raises:
        ConfigError: If no dataset root can be found.
    """
    recorded: dict[str, Any] = {}
    described = checkpoint_meta.get("dataset")
    if isinstance(described, Mapping):
        recorded.update({k: described[k] for k in ("name", "root") if described.get(k)})
    checkpoint_config = checkpoint_meta.get("config")
    if isinstance(checkpoint_config, Mapping):
        recorded.update(_dataset_section(checkpoint_config))
    if run_config:
        recorded.update(_dataset_section(run_config))
    chosen_name = name or recorded.get("name") or "synthetic"
    same_dataset = name is None or name == recorded.get("name")
    chosen_root = root or (recorded.get("root") if same_dataset else None)
    if not chosen_root:
        raise ConfigError(
            "no dataset root given and none recorded in the checkpoint: pass --root DIR "
            "(the folder written by 'als4gan prepare')"
        )
    if not root and not Path(str(chosen_root)).is_dir():
        raise ConfigError(
            f"the dataset root recorded at training time ({chosen_root}) does not exist from "
            f"here ({Path.cwd()}); pass --root DIR (and --dataset if needed)"
        )
    chosen_options = {
        key: recorded[key] for key in DATASET_OPTION_KEYS if key in recorded and same_dataset
    }
    chosen_options.update(_recorded_preprocessing_options(str(chosen_name), checkpoint_meta))
    chosen_options.update(options)
    return DataSource(str(chosen_name), str(chosen_root), chosen_options)


def _recorded_preprocessing_options(
    name: str, checkpoint_meta: Mapping[str, Any]
) -> dict[str, Any]:
    """``bands`` / ``image_max`` the checkpoint was trained with, for datasets that take them."""
    import inspect

    from als4gan.data import DATASETS

    record = recorded_preprocessing(checkpoint_meta)
    if record is None or name not in DATASETS:
        return {}
    accepted = inspect.signature(DATASETS[name].__init__).parameters
    return {
        key: record[key]
        for key in ("bands", "image_max")
        if key in accepted and record.get(key) is not None
    }


def check_preprocessing(
    dataset: SegmentationDataset, checkpoint: str, checkpoint_meta: Mapping[str, Any]
) -> None:
    """Refuse a dataset read with other bands or another scale than the checkpoint's training.

    Raises:
        CheckpointError: Naming both values and the fix.
    """
    record = recorded_preprocessing(checkpoint_meta)
    if record is None or record.get("partial"):
        return  # written before checkpoints recorded the preprocessing
    have = dataset.preprocessing()
    in_channels = int((checkpoint_meta.get("model_spec") or {}).get("in_channels", 3))
    want_bands = record.get("bands") or list(range(1, in_channels + 1))
    have_bands = have.get("bands") or list(range(1, dataset.in_channels + 1))
    if list(want_bands) != list(have_bands):
        raise CheckpointError(
            f"{checkpoint} was trained on bands {' '.join(map(str, want_bands))} but dataset "
            f"'{dataset.name}' at {dataset.root} reads bands {' '.join(map(str, have_bands))}. "
            "Omit --bands to use the recorded ones."
        )

    def describe(value: Any) -> str:
        return f"--image-max {float(value):g}" if value is not None else "no --image-max"

    want_max = record.get("image_max")
    prepared = getattr(dataset, "meta", None)
    prepared_max = prepared.get("image_max") if isinstance(prepared, Mapping) else None
    for have_max, where in (
        (have.get("image_max"), "is read with"),
        (prepared_max, "was prepared with"),
    ):
        if have_max is None and where == "was prepared with":
            continue
        same = (have_max is None and want_max is None) or (
            have_max is not None and want_max is not None and float(have_max) == float(want_max)
        )
        if not same:
            raise CheckpointError(
                f"{checkpoint} was trained with {describe(want_max)} but dataset "
                f"'{dataset.name}' at {dataset.root} {where} {describe(have_max)}: its pixels "
                "would be scaled differently from training. Evaluate on data prepared like the "
                "training data, or omit --image-max to use the recorded scale."
            )


def training_crop(checkpoint_meta: Mapping[str, Any]) -> int | None:
    """The square crop side the checkpoint was trained at, when its config records one."""
    config = checkpoint_meta.get("config")
    if not isinstance(config, Mapping):
        return None
    for key in CROP_KEYS:
        value = config.get(key)
        if isinstance(value, int | float) and value > 0:
            return int(value)
        if isinstance(value, list | tuple) and value and all(isinstance(v, int) for v in value):
            return int(min(value))
    return None


def resolve_regime(
    window: int | None, overlap: float | None, checkpoint_meta: Mapping[str, Any]
) -> tuple[InferenceRegime, str]:
    """The regime to score with, and where it came from.

    By default the regime the checkpoint was validated with during training (so the test split
    is scored the way ``best.pt`` was chosen); explicit ``--window`` / ``--overlap`` override
    it, with a warning when they differ from the recorded one. Checkpoints that record no
    regime fall back to :func:`resolve_window` and an overlap of 1/3.

    Returns:
        (the regime, and where it came from: ``"recorded"`` (as validated), ``"override"``
        (explicit and different from the recorded one), ``"explicit"`` (explicit, nothing
        recorded) or ``"default"`` (nothing given, nothing recorded)).
    """
    recorded = recorded_regime(checkpoint_meta)
    if recorded is None:
        return (
            InferenceRegime(
                resolve_window(window, checkpoint_meta),
                DEFAULT_OVERLAP if overlap is None else overlap,
            ),
            "default" if window is None and overlap is None else "explicit",
        )
    if window is not None and window < 0:
        raise ConfigError(f"--window must be positive (or 0 for whole images), got {window}")
    chosen = InferenceRegime(
        recorded.window if window is None else (window or None),
        recorded.overlap if overlap is None else overlap,
    )
    windowed = chosen.window is not None or recorded.window is not None
    if chosen.window != recorded.window or (windowed and chosen.overlap != recorded.overlap):
        log.warning(
            "warning: scoring with %s, but %s was validated with %s during training (its "
            "best.pt was chosen that way); drop --window/--overlap to score the same way",
            chosen.describe(),
            checkpoint_meta.get("path", "this checkpoint"),
            recorded.describe(),
        )
        return chosen, "override"
    return chosen, "recorded"


def resolve_window(window: int | None, checkpoint_meta: Mapping[str, Any]) -> int | None:
    """``--window`` (0 = whole images), else the training crop, else :data:`FALLBACK_WINDOW`."""
    if window is not None:
        if window < 0:
            raise ConfigError(f"--window must be positive (or 0 for whole images), got {window}")
        return window or None
    crop = training_crop(checkpoint_meta)
    if crop is None:
        log.info("checkpoint records no training crop; using %d px windows", FALLBACK_WINDOW)
        return FALLBACK_WINDOW
    return crop


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


def check_compatible(
    model_spec: Mapping[str, Any],
    dataset: SegmentationDataset,
    checkpoint: str,
    checkpoint_meta: Mapping[str, Any] | None = None,
) -> None:
    """Refuse a dataset whose bands or class count differ from the model's.

    Raises:
        CheckpointError: On a mismatch (naming both values and the fix).
    """
    model_classes = int(model_spec.get("num_classes", dataset.num_classes))
    model_bands = int(model_spec.get("in_channels", dataset.in_channels))
    if model_classes != dataset.num_classes:
        raise CheckpointError(
            f"{checkpoint} predicts {model_classes} classes but dataset '{dataset.name}' at "
            f"{dataset.root} has {dataset.num_classes} ({', '.join(dataset.classes.names)}). "
            "Evaluate on the dataset the model was trained for (--dataset/--root)."
        )
    classes = recorded_classes(checkpoint_meta or {})
    trained = [str(name) for name in classes.get("names", [])] if classes is not None else []
    if trained and tuple(trained) != tuple(dataset.classes.names):
        log.warning(
            "%s was trained on classes (%s) but dataset '%s' names them (%s); scores are "
            "computed by class index",
            checkpoint,
            ", ".join(trained),
            dataset.name,
            ", ".join(dataset.classes.names),
        )
    if model_bands != dataset.in_channels:
        raise CheckpointError(
            f"{checkpoint} takes {model_bands}-band images but dataset '{dataset.name}' has "
            f"{dataset.in_channels} bands; choose matching bands with --bands."
        )


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
) -> ConfusionMatrix:
    """Accumulate the confusion matrix of ``model`` over every image of ``dataset``.

    Args:
        model: Segmentation network in eval mode on ``settings.device`` (logits at input size).
        dataset: Dataset yielding full images and masks at label resolution.
        settings: Windowing, batching, device and post-processing.
        desc: Progress-bar label.

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
            bar.update(len(batch))
    return matrix


def evaluate_checkpoint(
    checkpoint: str | Path,
    source: DataSource,
    split: str,
    settings: EvalSettings,
    window: int | None = None,
    overlap: float | None = None,
) -> dict[str, Any]:
    """Load a checkpoint, evaluate it on ``split`` and return the metrics with their context.

    Args:
        checkpoint: Checkpoint file or run folder.
        source: Dataset to read.
        split: Split name or id-list path.
        settings: Prediction settings; its ``window`` and ``overlap`` are replaced by the
            regime of :func:`resolve_regime` (by default the one validation used in training).
        window: Explicit ``--window`` (``None`` = from the checkpoint; 0 = whole images).
        overlap: Explicit ``--overlap`` (``None`` = from the checkpoint).

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
    matrix = evaluate_model(model, dataset, run_settings, desc=label)
    result = matrix.compute(dataset.classes.names)
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
        result = evaluate_checkpoint(path, source, val_split, settings, window, overlap)
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

    Returns:
        Name -> path of each file written.
    """
    from als4gan.io import atomic_write_bytes
    from als4gan.report.plots import confusion_matrix_png

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
    return paths
