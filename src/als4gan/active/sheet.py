"""Class histograms of chosen images and their contact sheet (drawn by :mod:`als4gan.draw`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from als4gan.data.base import SegmentationDataset
from als4gan.draw.images import png_bytes, raw_display_rgb
from als4gan.draw.sheet import Tile, contact_sheet, make_tile
from als4gan.errors import DataError, DatasetNotFoundError
from als4gan.io import atomic_write_bytes


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


def sheet_tiles(
    dataset: SegmentationDataset, ids: Sequence[str], captions: Sequence[str], thumb: int
) -> list[Tile]:
    """Tiles of ``ids`` (image and colourised mask), read one at a time and shrunk at once."""
    tiles = []
    for sample_id, caption in zip(ids, captions, strict=True):
        rgb = raw_display_rgb(dataset.load_image(sample_id))
        try:
            mask: np.ndarray | None = dataset.classes.colorize(dataset.load_mask(sample_id))
        except (DataError, DatasetNotFoundError, FileNotFoundError):
            mask = None
        tiles.append(make_tile(caption, rgb, mask, thumb))
    return tiles


def contact_sheet_png(
    dataset: SegmentationDataset,
    ids: Sequence[str],
    rounds: Sequence[int] | None,
    title: str,
    max_images: int = 120,
    thumb: int = 96,
    columns: int = 6,
) -> tuple[bytes, int]:
    """The contact sheet of ``ids`` as PNG bytes, and the number of images shown.

    Args:
        dataset: Dataset of the ids.
        ids: Chosen ids, in selection order.
        rounds: Round of each id (0 = initial random set), printed before the id; ``None``
            when unknown (captions are the ids).
        title: First line of the sheet.
        max_images: Most images shown (the sheet says when some are left out).
        thumb: Thumbnail side in pixels.
        columns: Image/mask pairs per row.
    """
    shown = list(ids)[: max(0, max_images)]
    captions = [
        sample_id if rounds is None else f"r{rounds[index]} {sample_id}"
        for index, sample_id in enumerate(shown)
    ]
    tiles = sheet_tiles(dataset, shown, captions, thumb)
    sheet = contact_sheet(tiles, len(ids), title, dataset.classes, thumb, columns)
    return png_bytes(sheet), len(shown)


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
    the image and its id; a legend shows the class colours (see :func:`contact_sheet_png`).

    Returns:
        The number of images shown.
    """
    data, shown = contact_sheet_png(dataset, ids, rounds, title, max_images, thumb, columns)
    atomic_write_bytes(path, data)
    return shown
