"""``als4gan predict``: segment new images and GeoTIFFs of any size (tiled, georeference kept)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from als4gan.config import add_config_arguments, option, resolve_config

HELP = "segment new images and GeoTIFFs of any size (tiled, georeference kept)"
DESCRIPTION = """\
Segment image files, folders of images and GeoTIFFs of any size with a trained checkpoint.
Inputs are cut into overlapping tiles whose predictions are blended. GeoTIFFs are read and
written window by window, so memory stays bounded whatever the raster size.

Pixels are read and scaled as the model was trained (bands and --image-max recorded in the
checkpoint); a different --bands or --image-max is refused. No-data pixels (NaN, or the
raster's no-data value) are written as class 255 (the GeoTIFF's no-data value).

Outputs in --out, per input NAME:
  GeoTIFF input   NAME_classes.tif  class indices (CRS + transform kept, colour table embedded)
                  NAME_color.tif    class colours, full size;  NAME_color.png  preview + legend
  other images    NAME_classes.png  class indices (palette PNG); NAME_color.png  full size + legend
  --confidence    NAME_confidence.tif/.png   max class probability x 255 (uint8)
  --overlay       NAME_overlay.png  class colours over the image (preview for GeoTIFFs)
  always          NAME.json         size, georeference, class shares, timing (written last;
                                    inputs with one are skipped on a re-run unless --force)

examples:
  als4gan predict --checkpoint runs/s4gan scene.tif --out predictions --overlay
  als4gan predict --checkpoint runs/s4gan/checkpoints/best.pt tiles/ --out predictions \\
      --confidence --window 512
"""

log = logging.getLogger(__name__)


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``predict``."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, GeoTIFFs")
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="CKPT",
        help="checkpoint file, or a run folder (uses RUN_DIR/checkpoints/best.pt)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    from als4gan.argtypes import image_max_arg

    parser.add_argument(
        "--bands",
        type=int,
        nargs="+",
        default=None,
        help=(
            "1-based input bands to feed the model (default: the bands recorded in the "
            "checkpoint, else the first ones); a value other than the recorded one is refused"
        ),
    )
    parser.add_argument(
        "--image-max",
        type=image_max_arg,
        default=None,
        help=(
            "pixel value that maps to 1.0 (default: the one recorded in the checkpoint); only "
            "for checkpoints that record none, a different value is refused"
        ),
    )
    parser.add_argument(
        "--classes-file",
        default=None,
        help="YAML/JSON class table whose colours to use; must list the checkpoint's classes",
    )
    add_config_arguments(parser, PredictConfig, title="prediction")
    parser.add_argument("--config", default=None, help="YAML file with prediction options")
    parser.add_argument("--force", action="store_true", help="redo inputs already predicted")


def run(args: argparse.Namespace) -> int:
    """Predict every input."""
    import torch

    from als4gan.checkpoint import load_segmentation_model, resolve_preprocessing
    from als4gan.errors import ConfigError
    from als4gan.evaluate import resolve_window
    from als4gan.predict import (
        PredictSettings,
        checkpoint_class_table,
        collect_inputs,
        count_tiles,
        load_class_table,
        match_class_table,
        model_forward,
        plan_inputs,
        predict_file,
    )
    from als4gan.runtime import progress, resolve_amp, resolve_device, use_channels_last

    config = resolve_config(PredictConfig, args, args.config)
    if config.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {config.batch_size}")
    if config.preview_size < 16:
        raise ConfigError(f"--preview-size must be at least 16, got {config.preview_size}")
    if not 0 <= config.alpha <= 1:
        raise ConfigError(f"--alpha must lie in [0, 1], got {config.alpha}")
    from als4gan.runlock import claim_folder

    claim_folder(args.out)  # refuses a file, and a second process writing the same folder
    files = collect_inputs(args.inputs)
    device = resolve_device(config.device)
    model, meta = load_segmentation_model(args.checkpoint, device)
    spec = meta.get("model_spec") or {}
    num_classes = int(spec.get("num_classes", 0))
    in_channels = int(spec.get("in_channels", 3))
    table = checkpoint_class_table(meta, num_classes)
    if table.num_classes != num_classes:
        raise ConfigError(
            f"{meta['path']}: its class table has {table.num_classes} classes but the network "
            f"predicts {num_classes}; the checkpoint is inconsistent"
        )
    if args.classes_file:
        requested = load_class_table(args.classes_file, table.colors)
        table = match_class_table(table, requested, args.classes_file)
    bands, image_max = resolve_preprocessing(
        meta, list(args.bands) if args.bands else None, args.image_max, in_channels
    )
    window = resolve_window(config.window, meta)
    if window is None:
        raise ConfigError("--window 0 (whole images) is not possible for predict; give a size")
    settings = PredictSettings(
        window=window,
        overlap=config.overlap,
        batch_size=config.batch_size,
        device=device,
        amp=resolve_amp(config.amp, device),
        channels_last=use_channels_last("auto", device),
        bands=bands,
        image_max=image_max,
        confidence=config.confidence,
        overlay=config.overlay,
        preview_size=config.preview_size,
        alpha=config.alpha,
    )
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    forward = model_forward(model, settings)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = list(plan_inputs(files, out_dir, args.force))
    skipped = [file for file, _, done in plan if done]
    if skipped:
        log.info(
            "%d input(s) already predicted in %s (skipped; --force redoes them)",
            len(skipped),
            out_dir,
        )
    todo = [(file, name) for file, name, done in plan if not done]
    total = sum(count_tiles(file, settings) for file, _ in todo)
    with progress(total=total, desc="predict", unit="tile") as bar:
        for index, (file, name) in enumerate(todo):
            bar.set_description(f"[{index + 1}/{len(todo)}] {file.name}")
            summary = predict_file(
                file, name, out_dir, forward, table, in_channels, settings, bar.update
            )
            log.debug("%s: %s", file, summary["outputs"])
    print(
        f"predicted {len(todo)} input(s) ({len(skipped)} skipped) with window {window}, "
        f"overlap {settings.overlap} -> {out_dir}"
    )
    return 0
