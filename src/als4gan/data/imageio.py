"""Reading images and masks from disk with errors that name the file and the fix."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

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
    Non-``uint8`` rasters are returned with their own dtype: callers scale them.

    Args:
        path: The file.
        bands: 1-based band indices; ``None`` = the first three bands (or all when fewer).

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
        except RasterioIOError as err:
            raise DataError(
                f"{file} could not be read as a raster ({err}). The file is corrupt or "
                "truncated: re-export it or remove its id from the split file."
            ) from None
        return np.ascontiguousarray(np.moveaxis(data, 0, -1))
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
    return np.ascontiguousarray(array)


def read_mask_array(path: str | Path) -> np.ndarray:
    """Read a mask as stored: (H, W) for index/palette masks, (H, W, 3) for colour masks.

    Palette ("P" mode) PNGs return their indices, not their colours. TIFF masks are read with
    rasterio when Pillow cannot decode them.

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
