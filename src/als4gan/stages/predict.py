"""The prediction stage: segment image files, folders and GeoTIFFs of any size with a checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from als4gan.config import option
from als4gan.stages import releasing_folders

log = logging.getLogger("als4gan.commands.predict")


@dataclass
class PredictConfig:
    """Options of ``als4gan predict``."""

    window: int | None = option(
        None, "tile side in pixels; none = the checkpoint's training crop", metavar="PX"
    )
    overlap: float = option(0.25, "overlap fraction between neighbouring tiles (blended)")
    batch_size: int = option(4, "tiles per forward pass")
    device: str = option("auto", "torch device: auto, cpu, cuda, cuda:N, mps")
    amp: str = option(
        "auto", "bf16 autocast: auto (only where fast), bf16, off", choices=("auto", "bf16", "off")
    )
    confidence: bool = option(False, "also write the confidence (max probability) raster")
    overlay: bool = option(False, "also write the class colours over the input image")
    preview_size: int = option(2048, "longest side of the PNG previews of GeoTIFF inputs")
    alpha: float = option(0.45, "opacity of the class colours in overlays")

    def validate(self) -> None:
        """Check values the types cannot.

        Raises:
            ConfigError: For a batch size below 1, a preview below 16 px or alpha outside [0, 1].
        """
        from als4gan.errors import ConfigError

        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.preview_size < 16:
            raise ConfigError(f"--preview-size must be at least 16, got {self.preview_size}")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"--alpha must lie in [0, 1], got {self.alpha}")


@dataclass
class PredictResult:
    """What :func:`predict` wrote.

    Attributes:
        out: Output folder.
        predicted: Inputs predicted now.
        skipped: Inputs skipped (already predicted; ``force`` redoes them).
        window: Tile side used.
        overlap: Tile overlap used.
        summaries: Per predicted input, its ``NAME.json`` summary.
    """

    out: Path
    predicted: list[Path]
    skipped: list[Path]
    window: int
    overlap: float
    summaries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The line ``als4gan predict`` prints."""
        return (
            f"predicted {len(self.predicted)} input(s) ({len(self.skipped)} skipped) with window "
            f"{self.window}, overlap {self.overlap} -> {self.out}"
        )


def _model_and_table(
    checkpoint: str | Path, device: Any, classes_file: str | None
) -> tuple[Any, dict[str, Any], Any]:
    """The network, the checkpoint's metadata and its class table (or ``classes_file``'s)."""
    from als4gan.checkpoint import load_segmentation_model
    from als4gan.errors import ConfigError
    from als4gan.predict import checkpoint_class_table, load_class_table, match_class_table

    model, meta = load_segmentation_model(checkpoint, device)
    spec = meta.get("model_spec") or {}
    num_classes = int(spec.get("num_classes", 0))
    table = checkpoint_class_table(meta, num_classes)
    if table.num_classes != num_classes:
        raise ConfigError(
            f"{meta['path']}: its class table has {table.num_classes} classes but the network "
            f"predicts {num_classes}; the checkpoint is inconsistent"
        )
    if classes_file:
        requested = load_class_table(classes_file, table.colors)
        table = match_class_table(table, requested, classes_file)
    return model, meta, table


def _settings(
    config: PredictConfig,
    meta: dict[str, Any],
    device: Any,
    bands: Sequence[int] | None,
    image_max: float | None,
) -> Any:
    """Tiling and preprocessing of the inputs, as the model was trained."""
    from als4gan.checkpoint import resolve_preprocessing
    from als4gan.errors import ConfigError
    from als4gan.evaluate import resolve_window
    from als4gan.predict import PredictSettings
    from als4gan.runtime import resolve_amp, use_channels_last

    in_channels = int((meta.get("model_spec") or {}).get("in_channels", 3))
    resolved_bands, resolved_max = resolve_preprocessing(
        meta, list(bands) if bands else None, image_max, in_channels
    )
    window = resolve_window(config.window, meta)
    if window is None:
        raise ConfigError("--window 0 (whole images) is not possible for predict; give a size")
    return PredictSettings(
        window=window,
        overlap=config.overlap,
        batch_size=config.batch_size,
        device=device,
        amp=resolve_amp(config.amp, device),
        channels_last=use_channels_last("auto", device),
        bands=resolved_bands,
        image_max=resolved_max,
        confidence=config.confidence,
        overlay=config.overlay,
        preview_size=config.preview_size,
        alpha=config.alpha,
    )


@releasing_folders()
def predict(
    inputs: Sequence[str | Path],
    checkpoint: str | Path,
    out: str | Path,
    config: PredictConfig | None = None,
    *,
    bands: Sequence[int] | None = None,
    image_max: float | None = None,
    classes_file: str | None = None,
    force: bool = False,
) -> PredictResult:
    """Segment image files, folders of images and GeoTIFFs of any size (tiled, blended).

    Args:
        inputs: Image files, folders, GeoTIFFs.
        checkpoint: A checkpoint file, or a run folder (its ``checkpoints/best.pt``).
        out: Output folder (``NAME_classes``, ``NAME_color``, ``NAME.json``; see docs/api.md).
        config: Tiling, device and extra outputs (default: :class:`PredictConfig`).
        bands: 1-based input bands (default and only accepted value: the recorded ones).
        image_max: Pixel value that maps to 1.0 (for checkpoints that record none).
        classes_file: Class table whose colours to use (must list the checkpoint's classes).
        force: Redo inputs already predicted.

    Returns:
        The inputs predicted and skipped, the window and overlap used.

    Raises:
        ConfigError: On an invalid option or preprocessing other than the model's.
        CheckpointError: For an unreadable checkpoint.
    """
    import torch

    from als4gan.predict import collect_inputs, model_forward
    from als4gan.runlock import claim_folder
    from als4gan.runtime import resolve_device

    config = config or PredictConfig()
    config.validate()
    claim_folder(out)  # refuses a file, and a second process writing the same folder
    files = collect_inputs([str(item) for item in inputs])
    device = resolve_device(config.device)
    model, meta, table = _model_and_table(checkpoint, device, classes_file)
    settings = _settings(config, meta, device, bands, image_max)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo, skipped = _plan(files, out_dir, force)
    in_channels = int((meta.get("model_spec") or {}).get("in_channels", 3))
    forward = model_forward(model, settings)
    summaries = _predict_all(todo, out_dir, forward, table, in_channels, settings)
    predicted = [file for file, _ in todo]
    return PredictResult(out_dir, predicted, skipped, settings.window, settings.overlap, summaries)


def _plan(
    files: Sequence[Path], out_dir: Path, force: bool
) -> tuple[list[tuple[Path, str]], list[Path]]:
    """(inputs to predict with their output names, inputs already predicted)."""
    from als4gan.predict import plan_inputs

    plan = list(plan_inputs(files, out_dir, force))
    skipped = [file for file, _, done in plan if done]
    if skipped:
        log.info(
            "%d input(s) already predicted in %s (skipped; --force redoes them)",
            len(skipped),
            out_dir,
        )
    return [(file, name) for file, name, done in plan if not done], skipped


def _predict_all(
    todo: Sequence[tuple[Path, str]],
    out_dir: Path,
    forward: Any,
    table: Any,
    in_channels: int,
    settings: Any,
) -> list[dict[str, Any]]:
    """Predict each input in turn under one progress bar (counted in tiles)."""
    from als4gan.predict import count_tiles, predict_file
    from als4gan.runtime import progress

    total = sum(count_tiles(file, settings) for file, _ in todo)
    summaries: list[dict[str, Any]] = []
    with progress(total=total, desc="predict", unit="tile") as bar:
        for index, (file, name) in enumerate(todo):
            bar.set_description(f"[{index + 1}/{len(todo)}] {file.name}")
            summary = predict_file(
                file, name, out_dir, forward, table, in_channels, settings, bar.update
            )
            log.debug("%s: %s", file, summary["outputs"])
            summaries.append(summary)
    return summaries
