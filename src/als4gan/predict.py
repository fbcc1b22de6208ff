"""Segmentation of new imagery: image files in memory, GeoTIFFs of any size streamed by windows.

Every input goes through the same tiled engine (:func:`als4gan.tiles.predict_tiles`):
overlapping windows, probabilities blended with a tent weight, argmax, in memory that grows
with the raster width, never with its area. Inputs are read and GeoTIFF outputs written by
windows in :mod:`als4gan.rasters`; finished rows reach a GeoTIFF in whole block rows.

Outputs per input ``NAME`` (see docs/evaluation.md):

* GeoTIFF input: ``NAME_classes.tif`` (class indices, CRS and transform kept, colour table
  embedded), ``NAME_color.tif`` (RGB at full size, written by windows), ``NAME_color.png``
  (preview at most ``preview_size`` pixels, with legend), optionally ``NAME_confidence.tif``
  (max probability, ``uint8`` scaled by 255) and ``NAME_overlay.png`` (preview).
* Other images (PNG, JPEG...): ``NAME_classes.png`` (palette PNG: pixel values are class
  indices), ``NAME_color.png`` (full size, with legend), optionally ``NAME_confidence.png`` and
  ``NAME_overlay.png``.
* ``NAME.json``: size, georeference, class shares, timing and the files written. It is written
  last, so an input with a ``NAME.json`` is complete and skipped on a re-run (unless forced).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from als4gan.checkpoint import recorded_classes
from als4gan.data.encoding import ClassTable
from als4gan.data.imageio import GEOTIFF_SUFFIXES
from als4gan.draw.images import blend_overlay, display_rgb, fit_size, palette_image, with_legend
from als4gan.errors import CheckpointError, ConfigError, DataError, DatasetNotFoundError
from als4gan.io import atomic_open, utc_now, write_json
from als4gan.rasters import (
    BLOCK,
    ArraySource,
    GeoTiffSink,
    RasterSource,
    choose_bands,
    model_input,
    open_source,
)
from als4gan.runtime import autocast
from als4gan.tiles import Forward, MemorySink, Sink, Source, TileGrid, predict_tiles

log = logging.getLogger(__name__)

#: File suffixes picked up when a folder is given as input.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
#: GDAL block cache while streaming (MB): bounded, whatever the raster size.
GDAL_CACHE_MB = 64

#: Names of :mod:`als4gan.tiles` and :mod:`als4gan.rasters` that callers import from here.
__all__ = [
    "BLOCK",
    "ArraySource",
    "Forward",
    "GeoTiffSink",
    "MemorySink",
    "PredictSettings",
    "RasterSource",
    "Sink",
    "Source",
    "TileGrid",
    "checkpoint_class_table",
    "choose_bands",
    "collect_inputs",
    "count_tiles",
    "load_class_table",
    "match_class_table",
    "model_forward",
    "model_input",
    "open_source",
    "plan_inputs",
    "predict_file",
    "predict_tiles",
]


@dataclass
class PredictSettings:
    """How inputs are predicted and what is written.

    Attributes:
        window: Tile side in pixels.
        overlap: Overlap fraction between neighbouring tiles (blended).
        batch_size: Tiles per forward pass.
        device: Torch device.
        amp: bf16 autocast.
        channels_last: channels_last memory format for model and inputs.
        bands: 1-based bands to read (``None`` = the first ``in_channels`` bands).
        image_max: Stored pixel value meaning 1.0 (``None``: ``uint8`` / 255, float in [0, 1]).
        confidence: Also write the max-probability raster.
        overlay: Also write the class colours over the input image.
        preview_size: Longest side of PNG previews of streamed rasters.
        alpha: Opacity of the class colours in overlays.
    """

    window: int = 512
    overlap: float = 0.25
    batch_size: int = 4
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = False
    channels_last: bool = False
    bands: list[int] | None = None
    image_max: float | None = None
    confidence: bool = False
    overlay: bool = False
    preview_size: int = 2048
    alpha: float = 0.45


# --------------------------------------------------------------------------- class tables
def _entry_color(value: Any, where: str) -> tuple[int, int, int]:
    if isinstance(value, str) and value.startswith("#") and len(value) == 7:
        return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
    if isinstance(value, list | tuple) and len(value) >= 3:
        return (int(value[0]), int(value[1]), int(value[2]))
    raise ConfigError(f"{where}: a colour must be [R, G, B] or '#RRGGBB', got {value!r}")


def load_class_table(path: str | Path, fallback_colors: Sequence[Sequence[int]] = ()) -> ClassTable:
    """Read a class table from YAML or JSON.

    Accepted shapes: ``{names: [...], colors: [[r, g, b], ...]}``; ``{classes: [{name, color},
    ...]}``; ``{classes: {name: [r, g, b], ...}}``; or a bare list of names / entries. Missing
    colours are taken from ``fallback_colors``.

    Raises:
        DatasetNotFoundError: If the file does not exist.
        ConfigError: If it cannot be understood.
    """
    from als4gan.io import read_yaml

    file = Path(path)
    if not file.is_file():
        raise DatasetNotFoundError(f"classes file {file} does not exist")
    try:
        data = read_yaml(file)  # YAML is a superset of JSON
    except Exception as err:
        raise ConfigError(f"classes file {file} is not valid YAML/JSON: {err}") from None
    names: list[str] = []
    colors: list[tuple[int, int, int] | None] = []
    entries: Any = data.get("classes", data) if isinstance(data, dict) else data
    if isinstance(data, dict) and "names" in data:
        names = [str(name) for name in data["names"]]
        raw = data.get("colors") or data.get("colours") or []
        colors = [_entry_color(c, str(file)) for c in raw] or [None] * len(names)
    elif isinstance(entries, dict):
        for name, value in entries.items():
            names.append(str(name))
            if isinstance(value, dict):
                value = value.get("color", value.get("colour"))
            colors.append(_entry_color(value, str(file)) if value is not None else None)
    elif isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict):
                names.append(str(entry.get("name")))
                value = entry.get("color", entry.get("colour"))
                colors.append(_entry_color(value, str(file)) if value is not None else None)
            else:
                names.append(str(entry))
                colors.append(None)
    if not names:
        raise ConfigError(
            f"classes file {file} lists no classes; expected e.g. 'names: [urban, water]' and "
            "'colors: [[0, 255, 255], [0, 0, 255]]'"
        )
    if len(colors) != len(names):
        raise ConfigError(f"classes file {file} has {len(names)} names but {len(colors)} colours")
    resolved = []
    for index, color in enumerate(colors):
        if color is None:
            if index >= len(fallback_colors):
                raise ConfigError(f"classes file {file}: class '{names[index]}' has no colour")
            fallback = fallback_colors[index]
            color = (int(fallback[0]), int(fallback[1]), int(fallback[2]))
        resolved.append(color)
    return ClassTable(tuple(names), tuple(resolved))


def checkpoint_class_table(meta: Mapping[str, Any], num_classes: int) -> ClassTable:
    """The class table recorded in a checkpoint (generic names and colours when absent)."""
    classes = recorded_classes(meta)
    if classes is not None:
        return ClassTable.from_dict(classes)
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    colors = [[int(255 * c) for c in cmap(index % 20)[:3]] for index in range(num_classes)]
    return ClassTable.from_dict(
        {"names": [f"class {i}" for i in range(num_classes)], "colors": colors}
    )


def match_class_table(model_table: ClassTable, requested: ClassTable, source: str) -> ClassTable:
    """The requested colour table when it names the model's classes in the same order.

    Raises:
        CheckpointError: If the class count or names differ.
    """
    if requested.names != model_table.names:
        raise CheckpointError(
            f"the checkpoint predicts {model_table.num_classes} classes "
            f"({', '.join(model_table.names)}) but {source} lists {requested.num_classes} "
            f"({', '.join(requested.names)}). Use a classes file with the checkpoint's classes "
            "in the same order, or omit --classes-file to use the checkpoint's colours."
        )
    return ClassTable(model_table.names, requested.colors, model_table.ignore_index)


# --------------------------------------------------------------------------- inputs
def collect_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders (their images, not recursive, sorted) into a list of files.

    Raises:
        DatasetNotFoundError: If an input does not exist.
        DataError: If a folder holds no image files.
    """
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
            if not found:
                raise DataError(
                    f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                    "pass image files or a folder of them"
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DatasetNotFoundError(f"input {path} does not exist")
    return files


def output_names(files: Sequence[Path]) -> list[str]:
    """A unique output name per input: the file stem, disambiguated when stems repeat."""
    stems = [file.stem for file in files]
    names: list[str] = []
    used: set[str] = set()
    for file, stem in zip(files, stems, strict=True):
        name = stem if stems.count(stem) == 1 else f"{stem}_{file.suffix.lstrip('.').lower()}"
        base, counter = name, 2
        while name in used:
            name, counter = f"{base}_{counter}", counter + 1
        used.add(name)
        names.append(name)
    return names


# --------------------------------------------------------------------------- engine


def model_forward(model: nn.Module, settings: PredictSettings) -> Forward:
    """Wrap a segmentation network as a numpy tiles -> probabilities function."""

    @torch.inference_mode()
    def forward(tiles: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(tiles).to(settings.device)
        if settings.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with autocast(settings.device, settings.amp):
            logits = model(inputs)
        result: np.ndarray = torch.softmax(logits.float(), dim=1).cpu().numpy()
        return result

    return forward


# --------------------------------------------------------------------------- sinks


# --------------------------------------------------------------------------- per input
def _save_png(path: Path, image: Image.Image) -> None:
    with atomic_open(path, "wb") as handle:
        image.save(handle, format="PNG")


def _shares(counts: np.ndarray) -> list[float | None]:
    total = int(counts.sum())
    return [float(c) / total if total else None for c in counts]


def _describe_georef(source: RasterSource) -> dict[str, Any]:
    crs = source.dataset.crs
    return {
        "crs": crs.to_string() if crs else None,
        "transform": list(source.dataset.transform)[:6],
    }


def _preview_from_rasters(
    source: RasterSource,
    classes_path: Path,
    settings: PredictSettings,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decimated reads (bounded memory): class preview and, for overlays, an image preview."""
    import rasterio
    from rasterio.enums import Resampling

    height, width = fit_size(source.height, source.width, settings.preview_size)
    with rasterio.open(classes_path) as classes:
        preview = classes.read(1, out_shape=(height, width), resampling=Resampling.nearest)
    image = None
    if settings.overlay:
        bands = source.bands[:3] if len(source.bands) >= 3 else source.bands[:1]
        pixels = source.dataset.read(
            bands, out_shape=(len(bands), height, width), resampling=Resampling.average
        )
        scaled = model_input(pixels, source.image_max, source.path, source.nodata)
        image = display_rgb(np.moveaxis(scaled, 0, -1), stretch=source.dtype != np.uint8)
    return preview, image


def _raster_outputs(
    source: RasterSource,
    name: str,
    out_dir: Path,
    predict: Callable[[Sink], np.ndarray],
    table: ClassTable,
    settings: PredictSettings,
) -> tuple[dict[str, Path], list[float | None]]:
    """Stream a GeoTIFF through the engine into GeoTIFFs, then write the PNG previews."""
    import rasterio

    outputs = {
        "classes": out_dir / f"{name}_classes.tif",
        "color": out_dir / f"{name}_color.tif",
    }
    if settings.confidence:
        outputs["confidence"] = out_dir / f"{name}_confidence.tif"
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        sink = GeoTiffSink(source, outputs, table)
        try:
            counts = predict(sink)
        except BaseException:
            sink.close(complete=False)
            raise
        sink.close()
        preview, image = _preview_from_rasters(source, outputs["classes"], settings)
    shares = _shares(counts)
    scale = source.width / preview.shape[1]
    path = source.path
    title = path.name if preview.shape[1] == source.width else f"{path.name} (1:{scale:.3g})"
    outputs["color_png"] = out_dir / f"{name}_color.png"
    _save_png(outputs["color_png"], with_legend(table.colorize(preview), table, shares, title))
    if image is not None:
        outputs["overlay"] = out_dir / f"{name}_overlay.png"
        overlay = blend_overlay(image, preview, table, settings.alpha)
        _save_png(outputs["overlay"], with_legend(overlay, table, shares, title))
    return outputs, shares


def _image_outputs(
    source: ArraySource,
    name: str,
    out_dir: Path,
    predict: Callable[[Sink], np.ndarray],
    table: ClassTable,
    settings: PredictSettings,
) -> tuple[dict[str, Path], list[float | None]]:
    """Predict an ordinary image in memory and write its PNG outputs."""
    memory = MemorySink(source.height, source.width)
    shares = _shares(predict(memory))
    title = source.path.name
    outputs = {"classes": out_dir / f"{name}_classes.png"}
    _save_png(outputs["classes"], palette_image(memory.classes, table))
    outputs["color"] = out_dir / f"{name}_color.png"
    _save_png(outputs["color"], with_legend(table.colorize(memory.classes), table, shares, title))
    if settings.confidence:
        outputs["confidence"] = out_dir / f"{name}_confidence.png"
        scaled = (np.clip(memory.confidence, 0, 1) * 255 + 0.5).astype(np.uint8)
        _save_png(outputs["confidence"], Image.fromarray(scaled))
    if settings.overlay:
        outputs["overlay"] = out_dir / f"{name}_overlay.png"
        overlay = blend_overlay(source.display(), memory.classes, table, settings.alpha)
        _save_png(outputs["overlay"], with_legend(overlay, table, shares, title))
    return outputs, shares


def predict_file(
    path: Path,
    name: str,
    out_dir: Path,
    forward: Forward,
    table: ClassTable,
    in_channels: int,
    settings: PredictSettings,
    on_tiles: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Predict one input and write its outputs; returns the summary written to ``NAME.json``."""
    started = time.perf_counter()
    source = open_source(path, in_channels, settings.bands, settings.image_max)
    grid = TileGrid.build(source.height, source.width, settings.window, settings.overlap)
    summary: dict[str, Any] = {
        "input": str(path.resolve()),
        "height": source.height,
        "width": source.width,
        "window": settings.window,
        "overlap": settings.overlap,
        "tiles": grid.count,
        "class_names": list(table.names),
    }

    def predict(sink: Sink) -> np.ndarray:
        return predict_tiles(
            source, sink, forward, table.num_classes, grid, settings.batch_size, on_tiles
        )

    try:
        if isinstance(source, RasterSource):
            outputs, shares = _raster_outputs(source, name, out_dir, predict, table, settings)
            summary.update(_describe_georef(source))
        else:
            outputs, shares = _image_outputs(source, name, out_dir, predict, table, settings)
            summary.update({"crs": None, "transform": None})
    finally:
        if isinstance(source, RasterSource):
            source.close()
    seconds = time.perf_counter() - started
    summary.update(
        {
            "class_shares": dict(zip(table.names, shares, strict=True)),
            "seconds": round(seconds, 3),
            "tiles_per_second": round(grid.count / seconds, 3) if seconds > 0 else None,
            "outputs": {key: str(value) for key, value in outputs.items()},
            "created": utc_now(),
        }
    )
    write_json(out_dir / f"{name}.json", summary)
    return summary


def _recorded_input(summary_file: Path) -> str | None:
    """The input a finished ``NAME.json`` belongs to (``None`` if unreadable)."""
    try:
        data = json.loads(summary_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(data.get("input")) if isinstance(data, dict) else None


def plan_inputs(
    files: Sequence[Path], out_dir: Path, force: bool
) -> Iterator[tuple[Path, str, bool]]:
    """(input, output name, already done) for each input.

    An input is done when ``NAME.json`` exists for that same file. A name whose outputs
    belong to another input (``scene.tif`` then ``scene.png`` in a later call) is not reused:
    the file extension, then a counter, is appended instead.
    """
    taken: set[str] = set()
    for file, name in zip(files, output_names(files), strict=True):
        identity = str(file.resolve())
        candidates = [name, f"{name}_{file.suffix.lstrip('.').lower()}"]
        candidates += [f"{candidates[1]}_{index}" for index in range(2, 1000)]
        for candidate in candidates:
            summary = out_dir / f"{candidate}.json"
            owner = _recorded_input(summary) if summary.is_file() else None
            if candidate not in taken and (owner is None or owner == identity):
                taken.add(candidate)
                yield file, candidate, owner == identity and not force
                break
        else:  # pragma: no cover - a thousand inputs with one stem in one folder
            raise DataError(f"no free output name for {file} in {out_dir}")


def count_tiles(path: Path, settings: PredictSettings) -> int:
    """Tiles an input will take (reads only its header); 0 when it cannot be read yet."""
    try:
        if path.suffix.lower() in GEOTIFF_SUFFIXES:
            import rasterio

            with rasterio.open(path) as dataset:
                height, width = dataset.height, dataset.width
        else:
            with Image.open(path) as image:
                width, height = image.size
    except Exception:
        return 0
    return TileGrid.build(height, width, settings.window, settings.overlap).count
