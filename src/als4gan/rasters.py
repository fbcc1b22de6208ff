"""Inputs and outputs of ``als4gan predict``: images in memory, GeoTIFFs streamed by windows.

Stored pixels are scaled to model inputs here; GeoTIFF outputs keep the input's georeference.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from als4gan.data.encoding import IGNORE_INDEX, ClassTable
from als4gan.data.imageio import GEOTIFF_SUFFIXES, invalid_pixels, scale_to_unit
from als4gan.errors import DataError
from als4gan.tiles import Source

log = logging.getLogger("als4gan.predict")

#: Side of the tiles of written GeoTIFFs (and the row granularity of writes).
BLOCK = 256


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
