"""Segmentation of new imagery: image files in memory, GeoTIFFs of any size streamed by windows.

Every input goes through the same tiled engine (:func:`predict_tiles`): overlapping windows,
probabilities blended with a tent weight, argmax. The engine walks the raster one row-band of
windows at a time and, inside a band, one window at a time from left to right. It keeps only

* the running sum of the current window's columns (``classes x window x window``),
* the rows the next band will overlap (``classes x overlap x width``), and
* the finished rows of the band (``overlap-free rows x width``, bytes),

so its memory grows with the raster *width* times the window overlap, never with its area.
Finished rows are written through :class:`GeoTiffSink` in whole GeoTIFF block rows.

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
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch import nn

from als4gan.checkpoint import recorded_classes
from als4gan.data.encoding import IGNORE_INDEX, ClassTable
from als4gan.data.imageio import GEOTIFF_SUFFIXES, invalid_pixels, scale_to_unit
from als4gan.errors import CheckpointError, ConfigError, DataError, DatasetNotFoundError
from als4gan.inference import even_window_starts, tent_profile
from als4gan.io import atomic_open, utc_now, write_json
from als4gan.runtime import autocast

log = logging.getLogger(__name__)

#: File suffixes picked up when a folder is given as input.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
#: GDAL block cache while streaming (MB): bounded, whatever the raster size.
GDAL_CACHE_MB = 64
#: Side of the tiles of written GeoTIFFs (and the row granularity of writes).
BLOCK = 256

Forward = Callable[[np.ndarray], np.ndarray]


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


def model_input(
    array: np.ndarray,
    image_max: float | None,
    source: Path,
    nodata: float | None = None,
    band_axis: int = 0,
) -> np.ndarray:
    """Pixels as stored -> float32 model input, scaled like the training images.

    Scaling is :func:`als4gan.data.imageio.scale_to_unit` (the rule every dataset uses);
    no-data pixels (NaN, ``nodata``) are fed as 0 and written as no-data afterwards.
    """
    scaled = scale_to_unit(array, image_max, source=source, nodata=nodata, band_axis=band_axis)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    return scaled


def choose_bands(
    count: int, in_channels: int, bands: Sequence[int] | None, path: Path
) -> list[int]:
    """1-based bands to read from an input with ``count`` bands for a model of ``in_channels``.

    Raises:
        DataError: If the input has too few bands, or ``bands`` is out of range or of the wrong
            length.
    """
    if bands:
        chosen = list(bands)
        missing = [b for b in chosen if b < 1 or b > count]
        if missing:
            raise DataError(
                f"{path} has {count} band(s); --bands {' '.join(map(str, missing))} do not exist"
            )
        if len(chosen) != in_channels:
            raise DataError(
                f"the model takes {in_channels} band(s) but --bands selects {len(chosen)}; "
                f"give exactly {in_channels} band numbers"
            )
        return chosen
    if count < in_channels:
        raise DataError(
            f"{path} has {count} band(s) but the model takes {in_channels}: band-count mismatch. "
            "Predict on imagery with the bands the model was trained on."
        )
    if count > in_channels:
        log.info(
            "%s has %d bands; using bands 1-%d (choose others with --bands)",
            path.name,
            count,
            in_channels,
        )
    return list(range(1, in_channels + 1))


class Source(Protocol):
    """An input image readable by windows."""

    path: Path
    height: int
    width: int
    streamed: bool

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """(bands, height, width) float32 pixels scaled like training images."""

    def valid(self, top: int, height: int) -> np.ndarray | None:
        """(height, width) bool: pixels with data (``None`` when every pixel has data)."""


class ArraySource:
    """An ordinary image file (PNG, JPEG...) decoded whole with Pillow."""

    streamed = False

    def __init__(
        self,
        path: Path,
        in_channels: int,
        bands: Sequence[int] | None,
        image_max: float | None = None,
    ) -> None:
        self.path = path
        self.image_max = image_max
        try:
            with Image.open(path) as opened:
                opened.load()
                image = opened.convert("RGB") if opened.mode in ("P", "CMYK", "YCbCr") else opened
                array = np.asarray(image)
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(
                f"{path} could not be read as an image ({err}); the file is corrupt, truncated "
                "or not an image"
            ) from None
        if array.ndim == 2:
            array = array[:, :, None]
        chosen = choose_bands(array.shape[2], in_channels, bands, path)
        self.dtype = array.dtype
        self.pixels = np.ascontiguousarray(array[:, :, [b - 1 for b in chosen]])
        self.height, self.width = self.pixels.shape[:2]
        # Scaled once: refuses pixels that need --image-max before any tile is predicted.
        self.scaled = scale_to_unit(self.pixels, image_max, source=path)
        self.invalid = invalid_pixels(self.scaled)
        np.nan_to_num(self.scaled, copy=False, nan=0.0)

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """See :class:`Source`."""
        tile = self.scaled[top : top + height, left : left + width]
        return np.ascontiguousarray(tile.transpose(2, 0, 1))

    def valid(self, top: int, height: int) -> np.ndarray | None:
        """Pixels that are not NaN (``None`` when every pixel has data)."""
        if self.invalid is None:
            return None
        rows: np.ndarray = ~self.invalid[top : top + height]
        return rows

    def display(self) -> np.ndarray:
        """(H, W, 3) ``uint8`` for overlays."""
        from als4gan.draw.images import display_rgb

        return display_rgb(self.scaled, stretch=self.dtype != np.uint8)


class RasterSource:
    """A (Geo)TIFF read window by window through rasterio (never loaded whole)."""

    streamed = True

    def __init__(
        self,
        path: Path,
        in_channels: int,
        bands: Sequence[int] | None,
        image_max: float | None = None,
    ) -> None:
        import rasterio
        from rasterio.errors import RasterioIOError

        self.path = path
        self.image_max = image_max
        try:
            self.dataset = rasterio.open(path)
        except RasterioIOError as err:
            raise DataError(
                f"{path} could not be read as a raster ({err}); the file is corrupt, truncated "
                "or not a GeoTIFF"
            ) from None
        self.bands = choose_bands(self.dataset.count, in_channels, bands, path)
        self.height, self.width = self.dataset.height, self.dataset.width
        dtypes = {self.dataset.dtypes[b - 1] for b in self.bands}
        self.dtype = np.dtype(dtypes.pop()) if len(dtypes) == 1 else np.dtype("float32")
        nodata = {self.dataset.nodatavals[b - 1] for b in self.bands} - {None}
        self.nodata: float | None = float(nodata.pop()) if len(nodata) == 1 else None
        from rasterio.enums import MaskFlags

        flags = [self.dataset.mask_flag_enums[b - 1] for b in self.bands]
        self.has_nodata = any(MaskFlags.all_valid not in flag for flag in flags)
        self.floating = np.issubdtype(self.dtype, np.floating)
        if image_max is None and self.dtype != np.uint8:
            self._check_scale()

    def _check_scale(self) -> None:
        """Refuse, before predicting, pixels that need ``--image-max`` (decimated read)."""
        from rasterio.enums import Resampling

        side = 512
        shape = (len(self.bands), min(side, self.height), min(side, self.width))
        sample = self.dataset.read(self.bands, out_shape=shape, resampling=Resampling.nearest)
        scale_to_unit(sample, None, source=self.path, nodata=self.nodata, band_axis=0)

    def _window(self, top: int, left: int, height: int, width: int) -> Any:
        from rasterio.windows import Window

        return Window(left, top, width, height)

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """See :class:`Source`."""
        from rasterio.errors import RasterioIOError

        try:
            data = self.dataset.read(self.bands, window=self._window(top, left, height, width))
        except RasterioIOError as err:
            raise DataError(
                f"{self.path}: reading rows {top}-{top + height} failed ({err}); the file is "
                "corrupt or truncated"
            ) from None
        return model_input(data, self.image_max, self.path, self.nodata)

    def valid(self, top: int, height: int) -> np.ndarray | None:
        """Pixels with data in every chosen band: not masked, not NaN (``None`` if all are)."""
        if not self.has_nodata and not self.floating:
            return None
        window = self._window(top, 0, height, self.width)
        valid: np.ndarray = np.ones((height, self.width), dtype=bool)
        if self.has_nodata:
            masks = self.dataset.read_masks(self.bands, window=window)
            valid &= np.all(masks > 0, axis=0)
        if self.floating:
            for band in self.bands:  # one band at a time: bounded memory
                valid &= ~np.isnan(self.dataset.read(band, window=window))
        return valid

    def close(self) -> None:
        """Close the raster."""
        self.dataset.close()


def open_source(
    path: Path, in_channels: int, bands: Sequence[int] | None, image_max: float | None = None
) -> ArraySource | RasterSource:
    """A :class:`RasterSource` for TIFF files, an :class:`ArraySource` for other images.

    Raises:
        DataError: If the file cannot be read or its bands do not fit the model.
    """
    if path.suffix.lower() in GEOTIFF_SUFFIXES:
        return RasterSource(path, in_channels, bands, image_max)
    return ArraySource(path, in_channels, bands, image_max)


# --------------------------------------------------------------------------- engine
@dataclass
class TileGrid:
    """Window positions covering a raster."""

    tops: list[int]
    lefts: list[int]
    tile_height: int
    tile_width: int

    @classmethod
    def build(cls, height: int, width: int, window: int, overlap: float) -> TileGrid:
        """Evenly spaced windows of side ``window`` with at least ``overlap`` overlap."""
        if window < 1:
            raise ConfigError(f"--window must be at least 1 pixel, got {window}")
        if not 0 <= overlap < 1:
            raise ConfigError(f"--overlap must lie in [0, 1), got {overlap}")
        stride = max(1, round(window * (1 - overlap)))
        return cls(
            even_window_starts(height, window, stride),
            even_window_starts(width, window, stride),
            min(window, height),
            min(window, width),
        )

    @property
    def count(self) -> int:
        """Number of tiles."""
        return len(self.tops) * len(self.lefts)


class Sink(Protocol):
    """Receives finished rows of the prediction, top to bottom."""

    def write_rows(
        self, top: int, classes: np.ndarray, confidence: np.ndarray, source: Source
    ) -> None:
        """Rows ``top..top+len(classes)`` (class indices ``uint8``, confidence float32)."""


def _coverage(length: int, starts: Sequence[int], size: int) -> np.ndarray:
    """Sum of the 1-D tent weights of all windows at every position (for normalisation)."""
    profile = tent_profile(size).numpy()
    total = np.zeros(length, dtype=np.float32)
    for start in starts:
        total[start : start + size] += profile
    return total


def predict_tiles(
    source: Source,
    sink: Sink,
    forward: Forward,
    num_classes: int,
    grid: TileGrid,
    batch_size: int = 4,
    on_tiles: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Predict a whole raster tile by tile with blended overlaps, in bounded memory.

    Args:
        source: The input.
        sink: Receives finished rows, in order.
        forward: (B, bands, h, w) float32 -> (B, classes, h, w) float32 probabilities.
        num_classes: Number of classes.
        grid: Window positions.
        batch_size: Tiles per forward call.
        on_tiles: Called with the number of tiles just finished (progress).

    Returns:
        Pixel count per class (no-data excluded).
    """
    height, width = source.height, source.width
    tile_h, tile_w = grid.tile_height, grid.tile_width
    norm_y = _coverage(height, grid.tops, tile_h)
    norm_x = _coverage(width, grid.lefts, tile_w)
    weight = np.outer(tent_profile(tile_h).numpy(), tent_profile(tile_w).numpy())
    counts = np.zeros(num_classes, dtype=np.int64)
    lefts = grid.lefts
    # Rows shared with the next band, summed over every band so far. One buffer, updated in
    # place column segment by column segment (each segment is read before it is rewritten).
    bottoms = [top + tile_h for top in grid.tops]
    shared = [
        bottom - after for bottom, after in zip(bottoms, [*grid.tops[1:], height], strict=True)
    ]
    carry = np.zeros((num_classes, max(shared), width), dtype=np.float32)
    carry_rows = 0
    for band_index, top in enumerate(grid.tops):
        bottom = top + tile_h
        next_top = grid.tops[band_index + 1] if band_index + 1 < len(grid.tops) else height
        final_rows = next_top - top
        strip_classes = np.empty((final_rows, width), dtype=np.uint8)
        strip_confidence = np.empty((final_rows, width), dtype=np.float32)
        column = np.zeros((num_classes, tile_h, tile_w), dtype=np.float32)
        for chunk_start in range(0, len(lefts), batch_size):
            chunk = range(chunk_start, min(chunk_start + batch_size, len(lefts)))
            tiles = np.stack([source.read(top, lefts[j], tile_h, tile_w) for j in chunk])
            probs = forward(tiles)
            for offset, j in enumerate(chunk):
                left = lefts[j]
                column += probs[offset] * weight
                end = lefts[j + 1] if j + 1 < len(lefts) else width
                segment = column[:, :, : end - left]
                if carry_rows:
                    segment[:, :carry_rows] += carry[:, :carry_rows, left:end]
                done = segment[:, :final_rows] / (
                    norm_y[top:next_top, None] * norm_x[None, left:end]
                )
                strip_classes[:, left:end] = done.argmax(axis=0)
                strip_confidence[:, left:end] = done.max(axis=0)
                carry[:, : tile_h - final_rows, left:end] = segment[:, final_rows:]
                if j + 1 < len(lefts):
                    shift = lefts[j + 1] - left
                    shifted = np.zeros_like(column)
                    shifted[:, :, : tile_w - shift] = column[:, :, shift:]
                    column = shifted
            if on_tiles is not None:
                on_tiles(len(chunk))
        carry_rows = bottom - next_top
        valid = source.valid(top, final_rows)
        if valid is not None:
            strip_classes[~valid] = IGNORE_INDEX
            strip_confidence[~valid] = 0.0
        counts += np.bincount(strip_classes.ravel(), minlength=256)[:num_classes]
        sink.write_rows(top, strip_classes, strip_confidence, source)
    return counts


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
class MemorySink:
    """Keeps the whole prediction in memory (ordinary image inputs, which are in memory too)."""

    def __init__(self, height: int, width: int) -> None:
        self.classes = np.full((height, width), IGNORE_INDEX, dtype=np.uint8)
        self.confidence = np.zeros((height, width), dtype=np.float32)

    def write_rows(
        self, top: int, classes: np.ndarray, confidence: np.ndarray, source: Source
    ) -> None:
        """See :class:`Sink`."""
        self.classes[top : top + classes.shape[0]] = classes
        self.confidence[top : top + classes.shape[0]] = confidence


class _BlockRowWriter:
    """Buffers rows arriving in order and writes them to a raster in whole block rows."""

    def __init__(self, dataset: Any, bands: int, dtype: np.dtype[Any], width: int) -> None:
        self.dataset = dataset
        self.width = width
        self.buffer = np.empty((bands, 0, width), dtype=dtype)
        self.top = 0

    def add(self, rows: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, rows], axis=1)
        whole = (self.buffer.shape[1] // BLOCK) * BLOCK
        if whole:
            self._write(self.buffer[:, :whole])
            self.buffer = self.buffer[:, whole:].copy()

    def _write(self, rows: np.ndarray) -> None:
        from rasterio.windows import Window

        window = Window(0, self.top, self.width, rows.shape[1])
        self.dataset.write(rows, window=window)
        self.top += rows.shape[1]

    def close(self) -> None:
        if self.buffer.shape[1]:
            self._write(self.buffer)
        self.dataset.close()


class GeoTiffSink:
    """Writes class, colour and confidence GeoTIFFs by windows (georeference of the input kept).

    Each file is written under a temporary name next to its destination and moved into place by
    :meth:`close` only when everything was written, so an interrupted run never leaves a
    truncated raster under the final name.

    Args:
        source: The streamed input (CRS and transform are copied from it).
        paths: Output paths: ``classes`` and ``color`` always, ``confidence`` optionally.
        table: Class names and colours (embedded as the colour table of the class raster).
    """

    def __init__(self, source: RasterSource, paths: Mapping[str, Path], table: ClassTable) -> None:
        import rasterio

        self.table = table
        self.palette = table.palette()
        base = {
            "driver": "GTiff",
            "height": source.height,
            "width": source.width,
            "crs": source.dataset.crs,
            "transform": source.dataset.transform,
            "tiled": True,
            "blockxsize": BLOCK,
            "blockysize": BLOCK,
            "compress": "deflate",
            "BIGTIFF": "IF_SAFER",
        }
        self.writers: dict[str, _BlockRowWriter] = {}
        self.moves = {
            key: (path.with_name(f".{path.name}.partial"), path) for key, path in paths.items()
        }
        temporary = {key: move[0] for key, move in self.moves.items()}
        classes = rasterio.open(
            temporary["classes"], "w", count=1, dtype="uint8", nodata=IGNORE_INDEX, **base
        )
        classes.write_colormap(1, {i: (*table.colors[i], 255) for i in range(table.num_classes)})
        classes.update_tags(class_names=json.dumps(list(table.names)), software="als4gan")
        classes.set_band_description(1, "class index (255 = no data)")
        self.writers["classes"] = _BlockRowWriter(classes, 1, np.dtype("uint8"), source.width)
        color = rasterio.open(
            temporary["color"], "w", count=3, dtype="uint8", photometric="RGB", **base
        )
        self.writers["color"] = _BlockRowWriter(color, 3, np.dtype("uint8"), source.width)
        if "confidence" in paths:
            confidence = rasterio.open(temporary["confidence"], "w", count=1, dtype="uint8", **base)
            confidence.scales = (1 / 255,)
            confidence.set_band_description(1, "max class probability x 255")
            self.writers["confidence"] = _BlockRowWriter(
                confidence, 1, np.dtype("uint8"), source.width
            )

    def write_rows(
        self, top: int, classes: np.ndarray, confidence: np.ndarray, source: Source
    ) -> None:
        """See :class:`Sink`."""
        self.writers["classes"].add(classes[None])
        self.writers["color"].add(np.moveaxis(self.palette[classes], -1, 0))
        if "confidence" in self.writers:
            scaled = (np.clip(confidence, 0, 1) * 255 + 0.5).astype(np.uint8)
            self.writers["confidence"].add(scaled[None])

    def close(self, complete: bool = True) -> None:
        """Flush and close every output; move them into place when ``complete``, else delete."""
        for writer in self.writers.values():
            writer.close()
        for temporary, final in self.moves.values():
            if complete:
                os.replace(temporary, final)
            else:
                temporary.unlink(missing_ok=True)


# --------------------------------------------------------------------------- per input
def _save_png(path: Path, image: Image.Image) -> None:
    with atomic_open(path, "wb") as handle:
        image.save(handle, format="PNG")


def _palette_png(classes: np.ndarray, table: ClassTable) -> Image.Image:
    """Class indices as a palette PNG: values are indices, viewers show the class colours."""
    height, width = classes.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(classes).tobytes())
    image.putpalette(table.palette().reshape(-1).tolist())
    return image


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

    from als4gan.draw.images import display_rgb, fit_size

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
    import rasterio

    from als4gan.draw.images import blend_overlay, with_legend

    started = time.perf_counter()
    source = open_source(path, in_channels, settings.bands, settings.image_max)
    grid = TileGrid.build(source.height, source.width, settings.window, settings.overlap)
    outputs: dict[str, Path] = {}
    summary: dict[str, Any] = {
        "input": str(path.resolve()),
        "height": source.height,
        "width": source.width,
        "window": settings.window,
        "overlap": settings.overlap,
        "tiles": grid.count,
        "class_names": list(table.names),
    }
    try:
        if isinstance(source, RasterSource):
            outputs = {
                "classes": out_dir / f"{name}_classes.tif",
                "color": out_dir / f"{name}_color.tif",
            }
            if settings.confidence:
                outputs["confidence"] = out_dir / f"{name}_confidence.tif"
            with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
                sink = GeoTiffSink(source, outputs, table)
                try:
                    counts = predict_tiles(
                        source,
                        sink,
                        forward,
                        table.num_classes,
                        grid,
                        settings.batch_size,
                        on_tiles,
                    )
                except BaseException:
                    sink.close(complete=False)
                    raise
                sink.close()
                preview, image = _preview_from_rasters(source, outputs["classes"], settings)
            summary.update(_describe_georef(source))
            shares = _shares(counts)
            scale = source.width / preview.shape[1]
            title = (
                path.name if preview.shape[1] == source.width else f"{path.name} (1:{scale:.3g})"
            )
            outputs["color_png"] = out_dir / f"{name}_color.png"
            _save_png(
                outputs["color_png"], with_legend(table.colorize(preview), table, shares, title)
            )
            if image is not None:
                outputs["overlay"] = out_dir / f"{name}_overlay.png"
                overlay = blend_overlay(image, preview, table, settings.alpha)
                _save_png(outputs["overlay"], with_legend(overlay, table, shares, title))
        else:
            memory = MemorySink(source.height, source.width)
            counts = predict_tiles(
                source, memory, forward, table.num_classes, grid, settings.batch_size, on_tiles
            )
            shares = _shares(counts)
            outputs["classes"] = out_dir / f"{name}_classes.png"
            _save_png(outputs["classes"], _palette_png(memory.classes, table))
            outputs["color"] = out_dir / f"{name}_color.png"
            _save_png(
                outputs["color"],
                with_legend(table.colorize(memory.classes), table, shares, path.name),
            )
            if settings.confidence:
                outputs["confidence"] = out_dir / f"{name}_confidence.png"
                scaled = (np.clip(memory.confidence, 0, 1) * 255 + 0.5).astype(np.uint8)
                _save_png(outputs["confidence"], Image.fromarray(scaled))
            if settings.overlay:
                outputs["overlay"] = out_dir / f"{name}_overlay.png"
                overlay = blend_overlay(source.display(), memory.classes, table, settings.alpha)
                _save_png(outputs["overlay"], with_legend(overlay, table, shares, path.name))
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
