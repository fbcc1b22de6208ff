"""Reading images and masks from disk with errors that name the file and the fix."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from als4gan.argtypes import check_image_max
from als4gan.errors import DataError, DatasetNotFoundError

#: Suffixes read through rasterio when it is installed (keeps geo metadata and many bands).
GEOTIFF_SUFFIXES = (".tif", ".tiff")


def _open_pil(path: Path) -> Image.Image:
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            image.load()  # forces decoding: truncated files fail here, not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(
            f"{path} could not be read as an image ({err}). The file is corrupt or truncated: "
            "re-download or re-export it, or remove its id from the split file."
        ) from None
    except Image.DecompressionBombWarning:
        Image.MAX_IMAGE_PIXELS = None
        image = Image.open(path)
        image.load()
    return image


def _round_up(value: float) -> float:
    """The next "round" number (1, 2 or 5 times a power of ten) at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * power >= value:
            return step * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def _format_number(value: float) -> str:
    return f"{value:.6g}"


def invalid_pixels(
    array: np.ndarray, nodata: float | None = None, band_axis: int = -1
) -> np.ndarray | None:
    """Pixels that are NaN or equal ``nodata`` in any band (``None`` when there are none).

    Args:
        array: Pixels as stored: (H, W), or with a band axis.
        nodata: The raster's no-data value (``None`` when it has none).
        band_axis: The band axis of a 3-D ``array`` (-1: (H, W, C); 0: (C, H, W)).

    Returns:
        (H, W) bool array, or ``None``.
    """
    bands = array[None] if array.ndim == 2 else np.moveaxis(array, band_axis, 0)
    invalid: np.ndarray | None = None
    if np.issubdtype(bands.dtype, np.floating):
        invalid = np.isnan(bands).any(axis=0)
    if nodata is not None and not math.isnan(float(nodata)):
        equal = (bands == nodata).any(axis=0)
        invalid = equal if invalid is None else invalid | equal
    if invalid is None or not invalid.any():
        return None
    return invalid


def _missing_scale_error(
    array: np.ndarray,
    values: np.ndarray,
    value_range: tuple[float, float],
    source: str | Path | None,
) -> DataError:
    """The error of :func:`scale_to_unit` for pixels that need ``--image-max``."""
    low, high = value_range
    float_input = np.issubdtype(array.dtype, np.floating)
    where = f"{source} holds" if source is not None else "the image holds"
    kind = (
        f"{array.dtype} pixels outside [0, 1]"
        if float_input
        else f"{array.dtype} pixels (integers other than uint8)"
    )
    p99 = float(np.percentile(values, 99)) if values.size else high
    suggested = _round_up(high)
    if not float_input:
        suggested = min(suggested, float(np.iinfo(array.dtype).max))
    return DataError(
        f"{where} {kind}, observed range {_format_number(low)} to "
        f"{_format_number(high)} (99th percentile {_format_number(p99)}), and no "
        "scale was given. Say which value means 1.0 with --image-max VALUE: e.g. "
        f"--image-max {_format_number(suggested)} (the next round value above the "
        "maximum), or the sensor's full scale (10000 for Sentinel-2 L2A reflectance, "
        "65535 for full-range 16-bit data); see docs/data.md."
    )


def _mark_invalid(
    scaled: np.ndarray, array: np.ndarray, nodata: float | None, band_axis: int
) -> None:
    """Set the no-data pixels of ``array`` to NaN in every band of ``scaled`` (in place)."""
    invalid = invalid_pixels(array, nodata, band_axis)
    if invalid is not None:
        if array.ndim == 2:
            scaled[invalid] = np.nan
        else:
            np.moveaxis(scaled, band_axis, -1)[invalid] = np.nan


def scale_to_unit(
    array: np.ndarray,
    image_max: float | None = None,
    source: str | Path | None = None,
    nodata: float | None = None,
    band_axis: int = -1,
) -> np.ndarray:
    """Pixels as stored -> float32 in [0, 1], the one scaling rule of every reader and predict.

    * ``image_max`` given: divided by it and clipped to [0, 1];
    * ``uint8``: divided by 255 (bool: True is 1.0);
    * float already in [0, 1]: kept;
    * anything else (integers other than ``uint8``, floats outside [0, 1]) needs ``image_max``:
      an error shows the observed range and suggests a value.

    No-data pixels (NaN, or equal to ``nodata``, in any band) are NaN in every band of the
    result; :func:`als4gan.data.base.image_to_tensor` feeds them as 0 and the datasets set
    their labels to ignore.

    Args:
        array: Pixels as stored: (H, W), (H, W, C) or (C, H, W).
        image_max: The stored value that means 1.0 (``--image-max``).
        source: The file, for the error message.
        nodata: The raster's no-data value.
        band_axis: The band axis of a 3-D ``array`` (-1 or 0).

    Raises:
        DataError: If the pixels need an ``image_max`` and none was given.
    """
    image_max = check_image_max(image_max)
    float_input = np.issubdtype(array.dtype, np.floating)
    if image_max is not None:
        scaled = array.astype(np.float32) / np.float32(image_max)
        np.clip(scaled, 0.0, 1.0, out=scaled)
    elif array.dtype == np.uint8:
        scaled = array.astype(np.float32) / np.float32(255.0)
    elif array.dtype == np.bool_:  # 1-bit images: True is 1.0
        scaled = array.astype(np.float32)
    else:
        values = array.ravel()
        if nodata is not None:
            values = values[values != nodata]
        if float_input:
            values = values[~np.isnan(values)]
        low = float(values.min()) if values.size else 0.0
        high = float(values.max()) if values.size else 0.0
        if not (float_input and low >= 0.0 and high <= 1.0):
            raise _missing_scale_error(array, values, (low, high), source)
        scaled = array.astype(np.float32)
    if nodata is not None or float_input:
        _mark_invalid(scaled, array, nodata, band_axis)
    return scaled


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image as ``uint8`` array of shape (H, W, 3) (grey and RGBA are converted).

    Raises:
        DatasetNotFoundError: If the file does not exist.
        DataError: If it cannot be decoded.
    """
    image = _open_pil(Path(path))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).copy()


def read_raster(path: str | Path, bands: Sequence[int] | None = None) -> np.ndarray:
    """Read a (Geo)TIFF or any image as (H, W, C) array, selecting 1-based ``bands``.

    GeoTIFFs go through rasterio (multi-band, any dtype); other formats through Pillow.
    Non-``uint8`` rasters are returned with their own dtype: callers scale them with
    :func:`scale_to_unit`.

    Args:
        path: The file.
        bands: 1-based band indices; ``None`` = the first three bands (or all when fewer).

    Raises:
        DatasetNotFoundError: If the file does not exist.
        DataError: If it cannot be decoded or a band does not exist.
    """
    return read_raster_with_nodata(path, bands)[0]


def read_raster_with_nodata(
    path: str | Path, bands: Sequence[int] | None = None
) -> tuple[np.ndarray, float | None]:
    """:func:`read_raster` plus the raster's no-data value of the chosen bands (or ``None``).

    Raises:
        DatasetNotFoundError: If the file does not exist.
        DataError: If it cannot be decoded or a band does not exist.
    """
    file = Path(path)
    if not file.is_file():
        raise DatasetNotFoundError(f"{file} does not exist")
    if file.suffix.lower() in GEOTIFF_SUFFIXES:
        import rasterio
        from rasterio.errors import RasterioIOError

        try:
            with rasterio.open(file) as src:
                count = src.count
                chosen = list(bands) if bands else list(range(1, min(3, count) + 1))
                missing = [b for b in chosen if b < 1 or b > count]
                if missing:
                    raise DataError(
                        f"{file} has {count} band(s); band(s) {missing} do not exist. "
                        f"Choose --bands between 1 and {count}."
                    )
                data = src.read(chosen)
                values = {src.nodatavals[b - 1] for b in chosen} - {None}
                nodata = float(values.pop()) if len(values) == 1 else None
        except RasterioIOError as err:
            raise DataError(
                f"{file} could not be read as a raster ({err}). The file is corrupt or "
                "truncated: re-export it or remove its id from the split file."
            ) from None
        return np.ascontiguousarray(np.moveaxis(data, 0, -1)), nodata
    image = _open_pil(file)
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if bands:
        missing = [b for b in bands if b < 1 or b > array.shape[2]]
        if missing:
            raise DataError(f"{file} has {array.shape[2]} band(s); band(s) {missing} do not exist")
        array = array[:, :, [b - 1 for b in bands]]
    elif array.shape[2] > 3:
        array = array[:, :, :3]
    return np.ascontiguousarray(array), None


def band_count(path: Path) -> int:
    """Number of bands of an image, read from its header (alpha included).

    GeoTIFFs are opened with rasterio, other formats with Pillow.

    Raises:
        DataError: If the file cannot be read as an image.
    """
    if path.suffix.lower() in GEOTIFF_SUFFIXES:
        import rasterio
        from rasterio.errors import RasterioIOError

        try:
            with rasterio.open(path) as src:
                return int(src.count)
        except RasterioIOError as err:
            raise DataError(
                f"{path} could not be read as a raster ({err}). The file is corrupt or "
                "truncated: re-export it or remove its id from the split file."
            ) from None
    try:
        with Image.open(path) as image:
            return len(image.getbands())
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(
            f"{path} could not be read as an image ({err}). The file is corrupt or truncated: "
            "re-export it or remove its id from the split file."
        ) from None


def read_mask_array(path: str | Path, palette_colors: bool = False) -> np.ndarray:
    """Read a mask as stored: (H, W) for index/palette masks, (H, W, 3) for colour masks.

    Palette ("P" mode) PNGs return their indices, unless ``palette_colors`` asks for their
    colours (when the classes are given as colours): then index masks come back as (H, W, 3)
    colours looked up in the file's palette. TIFF masks are read with rasterio when Pillow
    cannot decode them.

    Args:
        path: The mask file.
        palette_colors: Decode palette masks through their palette.

    Raises:
        DatasetNotFoundError: If the file does not exist.
        DataError: If it cannot be decoded.
    """
    file = Path(path)
    try:
        image = _open_pil(file)
    except DataError:
        if file.suffix.lower() in GEOTIFF_SUFFIXES:
            array = read_raster(file, bands=[1])
            return np.ascontiguousarray(array[:, :, 0])
        raise
    if image.mode == "P" and palette_colors:
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if image.mode in ("P", "L", "I", "I;16", "I;16B", "1"):
        return np.asarray(image).astype(np.int64 if image.mode.startswith("I") else np.uint8)
    if image.mode == "LA":
        return np.asarray(image)[:, :, 0].copy()
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).copy()


def save_png(path: str | Path, array: np.ndarray, compress_level: int = 6) -> None:
    """Save a (H, W) or (H, W, 3) ``uint8`` array as PNG, atomically.

    Args:
        path: Output file.
        array: The pixels.
        compress_level: zlib level 0-9 (1 is about 3x faster than the default 6 on aerial
            photos for ~4% larger files; both are lossless).
    """
    from als4gan.io import atomic_open

    file = Path(path)
    with atomic_open(file, "wb") as handle:
        Image.fromarray(np.ascontiguousarray(array)).save(
            handle, format="PNG", compress_level=compress_level
        )


def save_index_png(path: str | Path, mask: np.ndarray, palette: np.ndarray) -> None:
    """Save a (H, W) ``uint8`` class-index mask as a palette PNG, atomically.

    The file stores the indices (what :func:`read_mask_array` returns) and shows the class
    colours in any image viewer.

    Args:
        path: Output file.
        mask: Class indices (255 = ignore).
        palette: (256, 3) ``uint8`` colour lookup table (e.g. ``ClassTable.palette()``).
    """
    from als4gan.io import atomic_open

    image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))
    image.putpalette(np.asarray(palette, dtype=np.uint8).reshape(-1).tolist())
    with atomic_open(Path(path), "wb") as handle:
        image.save(handle, format="PNG")
