"""Streaming statistics of a dataset split: class pixel shares, image labels, and bad files.

Used by ``als4gan data stats``. Samples are read one at a time (optionally in worker processes)
and only running totals are kept, so memory does not grow with the dataset. A sample that cannot
be read (corrupt file, size mismatch, mask value outside the class table...) is recorded as a
problem and skipped; pixels a dataset maps to ignore by its own rules (DeepGlobe colours that
match no class) are recorded as warnings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from als4gan.data.base import SegmentationDataset, image_to_tensor, nodata_pixels
from als4gan.errors import Als4ganError

#: At most this many problems/warnings are printed (all are in the JSON output).
MAX_LISTED = 50


@dataclass
class SampleReport:
    """What reading one sample gave (small: sent back from worker processes).

    Attributes:
        sample_id: The id.
        error: Why the sample could not be read (None when it was read).
        height: Mask height.
        width: Mask width.
        channels: Image bands.
        class_pixels: Pixel count per mask value (256 entries; 255 = ignore).
        label: Image-level label (-1 when unknown).
        unmatched: Pixels the dataset set to ignore because they matched no class.
        channel_sum: Per-band sum of image values in [0, 1] (no-data pixels left out).
        channel_sumsq: Per-band sum of squared image values.
        image_pixels: Pixels with data (those summed).
    """

    sample_id: str
    error: str | None = None
    height: int = 0
    width: int = 0
    channels: int = 0
    class_pixels: np.ndarray | None = None
    label: int = -1
    unmatched: int = 0
    channel_sum: np.ndarray | None = None
    channel_sumsq: np.ndarray | None = None
    image_pixels: int = 0


def inspect_sample(dataset: SegmentationDataset, sample_id: str) -> SampleReport:
    """Read one sample and summarise it; any failure becomes ``error`` instead of raising."""
    before = int(getattr(dataset, "unmatched_pixels", 0))
    try:
        image, mask = dataset.load_pair(sample_id)
        label = dataset._label_from_mask(sample_id, mask)
        pixels = image_to_tensor(image).double().flatten(1)
        invalid = nodata_pixels(image)
        if invalid is not None:  # NaN / the raster's no-data value: not part of the statistics
            pixels = pixels[:, torch.from_numpy(~invalid.ravel())]
    except Als4ganError as err:
        return SampleReport(sample_id, error=str(err))
    except Exception as err:  # keep going on anything a broken file can raise
        return SampleReport(sample_id, error=f"{type(err).__name__}: {err}")
    return SampleReport(
        sample_id,
        height=int(mask.shape[0]),
        width=int(mask.shape[1]),
        channels=int(pixels.shape[0]),
        class_pixels=np.bincount(mask.ravel(), minlength=256).astype(np.int64),
        label=int(label),
        unmatched=int(getattr(dataset, "unmatched_pixels", 0)) - before,
        channel_sum=pixels.sum(1).numpy(),
        channel_sumsq=pixels.square().sum(1).numpy(),
        image_pixels=int(pixels.shape[1]),
    )


class _Inspector(Dataset[SampleReport]):
    """Dataset view whose items are :class:`SampleReport` (lets a DataLoader parallelise)."""

    def __init__(self, dataset: SegmentationDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> SampleReport:
        return inspect_sample(self.dataset, self.dataset.ids[index])


def _keep(report: Any) -> Any:
    """Collate function for ``batch_size=None``: pass each report through unchanged."""
    return report


def iter_reports(dataset: SegmentationDataset, workers: int = 0) -> Iterator[SampleReport]:
    """Reports of every sample, in order, read by ``workers`` processes (0 = this one)."""
    if hasattr(dataset, "warn_unmatched"):
        dataset.warn_unmatched = False  # stats lists them all instead
    if workers <= 0:
        for sample_id in dataset.ids:
            yield inspect_sample(dataset, sample_id)
        return
    loader = DataLoader(_Inspector(dataset), batch_size=None, num_workers=workers, collate_fn=_keep)
    yield from loader


@dataclass
class StatsAccumulator:
    """Running totals over sample reports."""

    num_classes: int
    ignore_index: int
    num_labels: int
    num_samples: int = 0
    class_pixels: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))
    class_images: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))
    label_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unknown_labels: int = 0
    min_size: tuple[int, int] | None = None
    max_size: tuple[int, int] | None = None
    sizes: set[tuple[int, int]] = field(default_factory=set)
    channels: set[int] = field(default_factory=set)
    channel_sum: np.ndarray | None = None
    channel_sumsq: np.ndarray | None = None
    channel_pixels: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.label_counts = np.zeros(self.num_labels, dtype=np.int64)

    def update(self, report: SampleReport) -> None:
        """Add one sample."""
        self.num_samples += 1
        if report.error is not None or report.class_pixels is None:
            self.problems.append({"id": report.sample_id, "message": report.error or "unread"})
            return
        self.class_pixels += report.class_pixels
        self.class_images += report.class_pixels > 0
        if 0 <= report.label < self.num_labels:
            self.label_counts[report.label] += 1
        else:
            self.unknown_labels += 1
        size = (report.height, report.width)
        if len(self.sizes) < 100:
            self.sizes.add(size)
        self.min_size = size if self.min_size is None else min(self.min_size, size)
        self.max_size = size if self.max_size is None else max(self.max_size, size)
        self.channels.add(report.channels)
        if report.channel_sum is not None and report.channel_sumsq is not None:
            if self.channel_sum is None or self.channel_sumsq is None:
                self.channel_sum = np.zeros_like(report.channel_sum)
                self.channel_sumsq = np.zeros_like(report.channel_sum)
            if self.channel_sum.shape == report.channel_sum.shape:  # first band count only
                self.channel_sum += report.channel_sum
                self.channel_sumsq += report.channel_sumsq
                self.channel_pixels += report.image_pixels
        if report.unmatched:
            self.warnings.append(
                {
                    "id": report.sample_id,
                    "pixels": report.unmatched,
                    "message": f"{report.unmatched} pixel(s) matched no class and were set to "
                    "ignore (255)",
                }
            )


def compute_stats(
    dataset: SegmentationDataset, workers: int = 0, show_progress: bool = True
) -> dict[str, Any]:
    """Statistics of every sample of ``dataset`` (see :func:`format_stats` for the fields)."""
    from als4gan.runtime import progress

    totals = StatsAccumulator(
        num_classes=dataset.num_classes,
        ignore_index=dataset.classes.ignore_index,
        num_labels=len(dataset.label_names),
    )
    bar = progress(
        iter_reports(dataset, workers),
        total=len(dataset),
        desc="reading samples",
        unit="img",
        disable=not show_progress or None,
    )
    for report in bar:
        totals.update(report)
    return summarize(dataset, totals)


def _channel_moments(totals: StatsAccumulator) -> tuple[list[float] | None, list[float] | None]:
    """Per-band mean and standard deviation of the pixels read (``None`` when none were)."""
    if totals.channel_sum is None or totals.channel_sumsq is None or not totals.channel_pixels:
        return None, None
    mean_array = totals.channel_sum / totals.channel_pixels
    variance = np.maximum(totals.channel_sumsq / totals.channel_pixels - mean_array**2, 0.0)
    mean = [round(float(v), 4) for v in mean_array]
    std = [round(float(v), 4) for v in np.sqrt(variance)]
    return mean, std


def _class_entries(names: Sequence[str], totals: StatsAccumulator) -> list[dict[str, Any]]:
    """Pixels, share of the labelled pixels and images holding it, per pixel class."""
    class_counts = totals.class_pixels[: len(names)]
    labelled = int(class_counts.sum())
    return [
        {
            "index": index,
            "name": name,
            "pixels": int(class_counts[index]),
            "share": float(class_counts[index] / labelled) if labelled else 0.0,
            "images": int(totals.class_images[index]),
        }
        for index, name in enumerate(names)
    ]


def _label_entries(
    label_names: Sequence[str], totals: StatsAccumulator, num_read: int
) -> list[dict[str, Any]]:
    """Images and share of the images read, per image-level label."""
    return [
        {
            "index": index,
            "name": name,
            "images": int(totals.label_counts[index]),
            "share": float(totals.label_counts[index] / num_read) if num_read else 0.0,
        }
        for index, name in enumerate(label_names)
    ]


def summarize(dataset: SegmentationDataset, totals: StatsAccumulator) -> dict[str, Any]:
    """Turn running totals into a JSON-ready dict."""
    names = dataset.classes.names
    ignore = totals.ignore_index
    class_counts = totals.class_pixels[: len(names)]
    labelled = int(class_counts.sum())
    all_pixels = int(totals.class_pixels.sum())
    stray = [
        value
        for value in np.flatnonzero(totals.class_pixels).tolist()
        if value >= len(names) and value != ignore
    ]
    num_read = totals.num_samples - len(totals.problems)
    mean, std = _channel_moments(totals)
    return {
        "dataset": dataset.name,
        "root": str(dataset.root),
        "split": dataset.split,
        "num_samples": totals.num_samples,
        "num_read": num_read,
        "num_failed": len(totals.problems),
        "in_channels": sorted(totals.channels),
        "image_size": {
            "min": list(totals.min_size) if totals.min_size else None,
            "max": list(totals.max_size) if totals.max_size else None,
            "distinct": len(totals.sizes),
        },
        "pixels": {
            "total": all_pixels,
            "labelled": labelled,
            "ignore": int(totals.class_pixels[ignore]),
        },
        "classes": _class_entries(names, totals),
        "ignore": {
            "pixels": int(totals.class_pixels[ignore]),
            "share_of_all": float(totals.class_pixels[ignore] / all_pixels) if all_pixels else 0.0,
            "images": int(totals.class_images[ignore]),
        },
        "stray_mask_values": stray,
        "label_source": "scene class" if dataset.label_names != names else "dominant class",
        "labels": _label_entries(dataset.label_names, totals, num_read),
        "unlabelled_images": totals.unknown_labels,
        "channel_mean": mean,
        "channel_std": std,
        "problems": totals.problems,
        "warnings": totals.warnings,
        "unmatched_pixels": int(sum(w["pixels"] for w in totals.warnings)),
    }


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    return [line(header), line(["-" * w for w in widths]), *[line(row) for row in rows]]


def _overview_lines(stats: dict[str, Any]) -> list[str]:
    """Dataset, image sizes and bands, pixel totals."""
    out = [
        f"dataset {stats['dataset']}  root {stats['root']}  split {stats['split']}",
    ]
    size = stats["image_size"]
    if size["min"] is not None:
        if size["min"] == size["max"]:
            size_text = f"{size['min'][1]}x{size['min'][0]} px (all)"
        else:
            size_text = (
                f"{size['min'][1]}x{size['min'][0]} to {size['max'][1]}x{size['max'][0]} px "
                f"({size['distinct']}{'+' if size['distinct'] >= 100 else ''} sizes)"
            )
        channels = ", ".join(str(c) for c in stats["in_channels"])
        out.append(
            f"images  {stats['num_read']} read, {stats['num_failed']} failed; {size_text}; "
            f"{channels} band(s)"
        )
    else:
        out.append(f"images  {stats['num_read']} read, {stats['num_failed']} failed")
    pixels = stats["pixels"]
    out.append(
        f"pixels  {pixels['total']:,} ({pixels['labelled']:,} labelled, {pixels['ignore']:,} "
        f"ignore = {100 * stats['ignore']['share_of_all']:.4f}%)"
    )
    return out


def _class_tables(stats: dict[str, Any]) -> list[str]:
    """The pixel-class table and the image-level label table."""
    rows = [
        [
            str(c["index"]),
            c["name"],
            f"{c['pixels']:,}",
            f"{100 * c['share']:.2f}%",
            str(c["images"]),
        ]
        for c in stats["classes"]
    ]
    rows.append(
        ["255", "(ignore)", f"{stats['ignore']['pixels']:,}", "-", str(stats["ignore"]["images"])]
    )
    out = ["pixel classes (share of labelled pixels; images = images containing the class)"]
    out += _table(["#", "class", "pixels", "share", "images"], rows, right={0, 2, 3, 4})
    out.append("")
    out.append(f"image-level labels ({stats['label_source']})")
    rows = [
        [str(label["index"]), label["name"], str(label["images"]), f"{100 * label['share']:.1f}%"]
        for label in stats["labels"]
    ]
    if stats["unlabelled_images"]:
        rows.append(["-1", "(all ignore)", str(stats["unlabelled_images"]), "-"])
    out += _table(["#", "label", "images", "share"], rows, right={0, 2, 3})
    return out


def _issue_lines(stats: dict[str, Any]) -> list[str]:
    """Unmatched-colour warnings and unreadable samples (the first few of each)."""
    out: list[str] = []
    if stats["warnings"]:
        out.append("")
        out.append(
            f"warnings: {stats['unmatched_pixels']} pixel(s) in {len(stats['warnings'])} mask(s) "
            "matched no class and were set to ignore (255):"
        )
        out += [f"  {w['id']}: {w['pixels']} px" for w in stats["warnings"][:MAX_LISTED]]
        if len(stats["warnings"]) > MAX_LISTED:
            out.append(f"  ... and {len(stats['warnings']) - MAX_LISTED} more (see --json)")
    if stats["problems"]:
        out.append("")
        out.append(f"PROBLEMS: {len(stats['problems'])} sample(s) could not be used:")
        out += [f"  {p['id']}: {p['message']}" for p in stats["problems"][:MAX_LISTED]]
        if len(stats["problems"]) > MAX_LISTED:
            out.append(f"  ... and {len(stats['problems']) - MAX_LISTED} more (see --json)")
    return out


def format_stats(stats: dict[str, Any]) -> str:
    """A readable report of :func:`compute_stats` output."""
    out = _overview_lines(stats)
    out.append("")
    out += _class_tables(stats)
    if stats["channel_mean"] is not None:
        out.append("")
        out.append(
            "channel mean "
            + " ".join(f"{v:.4f}" for v in stats["channel_mean"])
            + "   std "
            + " ".join(f"{v:.4f}" for v in stats["channel_std"])
        )
    out += _issue_lines(stats)
    return "\n".join(out)


__all__ = [
    "SampleReport",
    "StatsAccumulator",
    "compute_stats",
    "format_stats",
    "inspect_sample",
    "iter_reports",
    "summarize",
]
