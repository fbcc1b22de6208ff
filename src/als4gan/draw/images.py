"""Image helpers for evaluation, prediction and reports: display RGB, overlays, legends, PNGs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from als4gan.data.encoding import ClassTable


#: Background of legends and contact sheets.
PAPER = (255, 255, 255)
INK = (31, 41, 55)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels (a bitmap font when FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """Encode an image as PNG bytes."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def display_rgb(image: np.ndarray, stretch: bool = False) -> np.ndarray:
    """(H, W, C) image in [0, 1] (any band count) -> (H, W, 3) ``uint8`` for display.

    Args:
        image: Image with values in [0, 1] (or any range when ``stretch``).
        stretch: Stretch each band between its 2nd and 98th percentile (for 16-bit or float
            rasters, which look black when shown as they are).
    """
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    array = array[:, :, :3]
    if stretch:
        out = np.empty_like(array)
        for band in range(3):
            values = array[:, :, band]
            finite = values[np.isfinite(values)]
            low, high = np.percentile(finite, (2, 98)) if finite.size else (0.0, 1.0)
            scale = float(high - low) if high > low else 1.0
            out[:, :, band] = (values - low) / scale
        array = out
    result: np.ndarray = (np.clip(np.nan_to_num(array), 0, 1) * 255 + 0.5).astype(np.uint8)
    return result


def blend_overlay(
    rgb: np.ndarray, classes: np.ndarray, table: ClassTable, alpha: float = 0.45
) -> np.ndarray:
    """Class colours blended over an RGB image; ignore/no-data pixels show the image alone.

    Args:
        rgb: (H, W, 3) ``uint8`` image.
        classes: (H, W) class indices (``table.ignore_index`` / 255 = no class).
        table: Colours of the classes.
        alpha: Opacity of the class colours.
    """
    colours = table.colorize(classes).astype(np.float32)
    base = rgb.astype(np.float32)
    labelled = (classes < table.num_classes)[:, :, None]
    mixed = np.where(labelled, (1 - alpha) * base + alpha * colours, base)
    result: np.ndarray = (mixed + 0.5).astype(np.uint8)
    return result


def with_legend(
    rgb: np.ndarray,
    table: ClassTable,
    shares: Sequence[float | None] | None = None,
    title: str | None = None,
) -> Image.Image:
    """The image with a legend panel on its right: a swatch, name (and share) per class.

    Args:
        rgb: (H, W, 3) ``uint8`` image.
        table: Class names and colours.
        shares: Optional share of pixels of each class (0-1), printed after the name.
        title: Optional legend title (e.g. the input file name).
    """
    height, width = rgb.shape[:2]
    size = int(np.clip(min(height, 1400) / 34, 12, 26))
    text_font = font(size)
    title_font = font(int(size * 1.1))
    line = int(size * 1.7)
    swatch = int(size * 1.2)
    pad = size
    labels = []
    for index, name in enumerate(table.names):
        share = shares[index] if shares is not None and index < len(shares) else None
        labels.append(f"{name}" + (f"  {100 * share:.1f}%" if share is not None else ""))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = max(int(measure.textlength(label, font=text_font)) for label in labels)
    if title:
        text_width = max(text_width, int(measure.textlength(title, font=title_font)) - swatch)
    panel_width = pad * 3 + swatch + text_width
    panel_height = pad * 2 + line * len(labels) + (line if title else 0)
    canvas = Image.new("RGB", (width + panel_width, max(height, panel_height)), PAPER)
    canvas.paste(Image.fromarray(np.ascontiguousarray(rgb)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x = width + pad
    y = pad
    if title:
        draw.text((x, y), title, fill=INK, font=title_font)
        y += line
    for index, label in enumerate(labels):
        colour = tuple(int(c) for c in table.colors[index])
        top = y + (line - swatch) // 2
        draw.rectangle((x, top, x + swatch, top + swatch), fill=colour, outline=INK, width=1)
        draw.text((x + swatch + pad // 2, y + (line - size) // 2), label, fill=INK, font=text_font)
        y += line
    return canvas


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W) or (H, W, C) array (labels stay labels).

    Samples at output pixel centres, like Pillow's ``NEAREST`` and the image resizes, so a
    mask stays aligned with the image it is shown beside.
    """
    rows = ((np.arange(height) + 0.5) * array.shape[0] / height).astype(np.int64)
    cols = ((np.arange(width) + 0.5) * array.shape[1] / width).astype(np.int64)
    resized: np.ndarray = array[rows][:, cols]
    return resized


def fit_size(height: int, width: int, longest: int) -> tuple[int, int]:
    """(height, width) scaled so that the longer side is at most ``longest``."""
    scale = min(1.0, longest / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def raw_display_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, C) image of any dtype, as read from disk -> (H, W, 3) ``uint8`` for display.

    The first three bands are kept (one band is repeated); ``uint8`` images are shown as they
    are, others stretched between their 1st and 99th percentile.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    image = image[:, :, :3]
    if image.shape[2] < 3:
        image = np.repeat(image[:, :, :1], 3, axis=2)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    data = image.astype(np.float64)
    low, high = np.percentile(data, 1), np.percentile(data, 99)
    scaled = np.clip((data - low) / max(high - low, 1e-12), 0, 1)
    result: np.ndarray = (scaled * 255).round().astype(np.uint8)
    return result


def palette_image(classes: np.ndarray, table: ClassTable) -> Image.Image:
    """Class indices as a palette image: values are indices, viewers show the class colours."""
    height, width = classes.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(classes).tobytes())
    image.putpalette(table.palette().reshape(-1).tolist())
    return image
