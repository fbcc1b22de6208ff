"""Class histograms of chosen images and the contact sheet (thumbnails with colourised masks)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from als4gan.data.base import SegmentationDataset
from als4gan.errors import DataError, DatasetNotFoundError
from als4gan.io import atomic_write_bytes

#: Font size of the sheet's captions in pixels: legible when the sheet is shown slightly
#: downscaled in the report (11 px or more on screen).
CAPTION_PX = 14


def _caption_font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at :data:`CAPTION_PX` (its fixed small bitmap on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=CAPTION_PX)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def class_histogram(dataset: SegmentationDataset, ids: Sequence[str]) -> dict[str, Any]:
    """Image-label counts and pixel counts per class of ``ids`` (masks read one at a time).

    Returns:
        ``{"images": n, "labels": {name: count}, "pixels": {name: count},
        "pixel_share": {name: share}, "ignored_pixels": count}``; ``labels``/``pixels`` are
        ``None`` when the dataset has no readable masks.
    """
    names = list(dataset.classes.names)
    label_names = list(dataset.label_names)
    label_counts = np.zeros(len(label_names), dtype=np.int64)
    pixel_counts = np.zeros(len(names), dtype=np.int64)
    ignored = 0
    try:
        for sample_id in ids:
            mask = dataset.load_mask(sample_id)
            values = mask.ravel().astype(np.int64)
            valid = values[values < len(names)]
            pixel_counts += np.bincount(valid, minlength=len(names))[: len(names)]
            ignored += int(values.size - valid.size)
            label = dataset.image_label(sample_id)
            if 0 <= label < len(label_names):
                label_counts[label] += 1
    except (DataError, DatasetNotFoundError, FileNotFoundError):
        return {"images": len(ids), "labels": None, "pixels": None, "pixel_share": None}
    total = int(pixel_counts.sum())
    return {
        "images": len(ids),
        "labels": {name: int(count) for name, count in zip(label_names, label_counts, strict=True)},
        "pixels": {name: int(count) for name, count in zip(names, pixel_counts, strict=True)},
        "pixel_share": {
            name: (float(count) / total if total else 0.0)
            for name, count in zip(names, pixel_counts, strict=True)
        },
        "ignored_pixels": ignored,
    }


def add_histograms(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Sum two results of :func:`class_histogram` (pixel shares recomputed)."""
    if first.get("pixels") is None or second.get("pixels") is None:
        return {
            "images": first["images"] + second["images"],
            "labels": None,
            "pixels": None,
            "pixel_share": None,
        }
    labels = {k: first["labels"][k] + second["labels"][k] for k in first["labels"]}
    pixels = {k: first["pixels"][k] + second["pixels"][k] for k in first["pixels"]}
    total = sum(pixels.values())
    return {
        "images": first["images"] + second["images"],
        "labels": labels,
        "pixels": pixels,
        "pixel_share": {k: (v / total if total else 0.0) for k, v in pixels.items()},
        "ignored_pixels": first.get("ignored_pixels", 0) + second.get("ignored_pixels", 0),
    }


def _thumbnail(array: np.ndarray, size: int, resample: Image.Resampling) -> Image.Image:
    image = Image.fromarray(array)
    scale = size / max(image.size)
    new = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
    return image.resize(new, resample)


def _display_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, C) image of any dtype -> (H, W, 3) uint8 for display (first three bands)."""
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
    return (scaled * 255).round().astype(np.uint8)


def write_contact_sheet(
    path: str | Path,
    dataset: SegmentationDataset,
    ids: Sequence[str],
    rounds: Sequence[int],
    title: str,
    max_images: int = 120,
    thumb: int = 96,
    columns: int = 6,
) -> int:
    """Write a PNG grid: each chosen image with its colourised mask beside it.

    Images are read one at a time and shrunk immediately. Captions give the round that chose
    the image and its id; a legend shows the class colours.

    Args:
        path: Output PNG.
        dataset: Dataset of the ids.
        ids: Chosen ids, in selection order.
        rounds: Round of each id (0 = initial random set).
        title: First line of the sheet.
        max_images: Most images shown (the title says when some are left out).
        thumb: Thumbnail side in pixels.
        columns: Image/mask pairs per row.

    Returns:
        The number of images shown.
    """
    shown = list(ids)[: max(0, max_images)]
    font = _caption_font()
    caption = CAPTION_PX + 6
    header = 2 * CAPTION_PX + 16
    cell_w, cell_h = 2 * thumb + 6, thumb + caption + 6
    columns = max(1, min(columns, len(shown) or 1))
    rows = max(1, -(-len(shown) // columns))
    width = max(columns * cell_w + 8, 480)
    palette = dataset.classes
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    legend_items: list[tuple[int, int, str, tuple[int, int, int]]] = []
    x, line = 6, 0
    for name, color in zip(palette.names, palette.colors, strict=True):
        item_width = 22 + int(measure.textlength(name, font=font))
        if x + item_width > width and x > 6:
            x, line = 6, line + 1
        legend_items.append((x, line, name, color))
        x += item_width
    legend = (CAPTION_PX + 8) * (line + 1) + 4
    sheet = Image.new("RGB", (width, header + rows * cell_h + legend + 8), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    note = f"{len(ids)} images" + (f", first {len(shown)} shown" if len(shown) < len(ids) else "")
    draw.text((6, 4), title, fill=(0, 0, 0), font=font)
    draw.text((6, CAPTION_PX + 8), note, fill=(60, 60, 60), font=font)
    for index, sample_id in enumerate(shown):
        x = 4 + (index % columns) * cell_w
        y = header + (index // columns) * cell_h
        image = _thumbnail(
            _display_rgb(dataset.load_image(sample_id)), thumb, Image.Resampling.BILINEAR
        )
        sheet.paste(image, (x, y))
        try:
            mask = _thumbnail(
                palette.colorize(dataset.load_mask(sample_id)), thumb, Image.Resampling.NEAREST
            )
            sheet.paste(mask, (x + thumb + 2, y))
            # outline: white (barren) masks would vanish into the background otherwise
            draw.rectangle(
                (x + thumb + 1, y - 1, x + thumb + 2 + mask.size[0], y + mask.size[1]),
                outline=(150, 150, 150),
            )
        except (DataError, DatasetNotFoundError, FileNotFoundError):
            draw.text((x + thumb + 8, y + thumb // 2), "no mask", fill=(120, 0, 0), font=font)
        label = f"r{rounds[index]} {sample_id}"
        while len(label) > 4 and draw.textlength(label, font=font) > cell_w - 6:
            label = label[:-2] + "…"
        draw.text((x, y + thumb + 1), label, fill=(0, 0, 0), font=font)
    top = header + rows * cell_h + 4
    for x, line, name, color in legend_items:
        y = top + (CAPTION_PX + 8) * line
        draw.rectangle((x, y, x + 12, y + 12), fill=tuple(color), outline=(0, 0, 0))
        draw.text((x + 16, y), name, fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return len(shown)
