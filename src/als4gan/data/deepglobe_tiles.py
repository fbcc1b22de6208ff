"""The tiling work of ``als4gan prepare deepglobe``: its config, one image's tiles, all images.

:func:`als4gan.data.deepglobe.prepare_deepglobe` splits the source images and calls
:class:`TilingRun`; each source image is cut and written by :func:`tile_one` (in a worker
process when several are used).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from als4gan.data.deepglobe_format import DEEPGLOBE_CLASSES, IMAGE_SUFFIX, MASK_SUFFIX, strip_suffix
from als4gan.data.encoding import dominant_class
from als4gan.data.imageio import save_index_png, save_png
from als4gan.data.tiling import (
    REMAINDER_MODES,
    crop_mask_tile,
    crop_tile,
    resize_image,
    resize_mask,
    scaled_size,
    tile_grid,
)
from als4gan.errors import ConfigError

if TYPE_CHECKING:
    from als4gan.data.deepglobe import DeepGlobeDataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeepGlobePrepareConfig:
    """Parameters of ``als4gan prepare deepglobe``.

    Attributes:
        tile_size: Tile side in pixels (612 = 4x4 tiles per 2448 px image); 0 = no tiling.
        remainder: Border handling when a side is not a multiple of the tile size
            (:data:`als4gan.data.tiling.REMAINDER_MODES`).
        scale: Resize factor applied to whole images before tiling (images: area/bilinear,
            masks: nearest neighbour only).
        val_fraction: Share of source images for validation.
        test_fraction: Share of source images for test.
        seed: Seed of the image-level split.
    """

    tile_size: int = 612
    remainder: str = "overlap"
    scale: float = 1.0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0

    def validate(self) -> None:
        """Raise :class:`ConfigError` on impossible values."""
        if self.tile_size < 0:
            raise ConfigError(
                f"--tile-size must be 0 (no tiling) or positive, got {self.tile_size}"
            )
        if self.remainder not in REMAINDER_MODES:
            raise ConfigError(
                f"--remainder must be one of {', '.join(REMAINDER_MODES)}, got {self.remainder}"
            )
        if not 0 < self.scale <= 8:
            raise ConfigError(f"--scale must lie in (0, 8], got {self.scale}")


def check_out(src: Path, out: Path, force: bool) -> None:
    """Refuse an ``out`` that is the source, or holds images/masks ``prepare`` did not write."""
    if out.resolve() == src.resolve():
        raise ConfigError(
            f"--out {out} is the source folder; choose another folder (prepare writes tiles "
            "into OUT/images and OUT/masks)"
        )
    if (
        not force
        and not (out / "dataset.json").is_file()
        and any(
            (out / name).is_dir() and any((out / name).iterdir()) for name in ("images", "masks")
        )
    ):
        raise ConfigError(
            f"{out} already has images/ or masks/ that were not written by 'als4gan prepare'. "
            "Choose an empty --out, or pass --force to write into it anyway."
        )


def remove_stale(out: Path, keep_files: set[str]) -> int:
    """Delete tiles of an earlier preparation that the new one did not write."""
    removed = 0
    for folder, suffix in (("images", IMAGE_SUFFIX), ("masks", MASK_SUFFIX)):
        directory = out / folder
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if strip_suffix(path.name, suffix) is not None and path.name not in keep_files:
                path.unlink()
                removed += 1
    return removed


@dataclass(frozen=True)
class TileResult:
    """What preparing one source image produced (returned from worker processes)."""

    sample_id: str
    tiles: list[tuple[str, int]]  # (tile id, dominant class)
    files: list[str]
    unmatched_pixels: int


def tile_one(
    source: DeepGlobeDataset,
    sample_id: str,
    out_root: Path,
    config: DeepGlobePrepareConfig,
    keep_existing: bool,
) -> TileResult:
    """Decode one source pair, cut it into tiles and write them (runs in a worker process)."""
    before = source.unmatched_pixels
    image, mask = source.load_pair(sample_id)
    if config.scale != 1.0:
        height, width = scaled_size(image.shape[0], image.shape[1], config.scale)
        image = resize_image(image, height, width)
        mask = resize_mask(mask, height, width)
    if config.tile_size == 0:
        pieces = [(sample_id, image, mask)]
    else:
        grid = tile_grid(image.shape[0], image.shape[1], config.tile_size, config.remainder)
        if not grid:
            logger.warning(
                "%s (%dx%d) is smaller than one %d px tile and gives no tile with --remainder drop",
                source.image_path(sample_id),
                image.shape[1],
                image.shape[0],
                config.tile_size,
            )
        pieces = [
            (tile.tile_id(sample_id), crop_tile(image, tile), crop_mask_tile(mask, tile))
            for tile in grid
        ]
    source_file = source.image_path(sample_id)
    copy_image = config.tile_size == 0 and config.scale == 1.0
    palette = DEEPGLOBE_CLASSES.palette()
    tiles, files = [], []
    for tile_id, tile_image, tile_mask in pieces:
        # copying keeps the source bytes (no re-encoding); tiles are written as lossless PNG
        suffix = source_file.suffix.lower() if copy_image else ".png"
        image_file = out_root / "images" / f"{tile_id}{IMAGE_SUFFIX}{suffix}"
        mask_file = out_root / "masks" / f"{tile_id}{MASK_SUFFIX}.png"
        if not (keep_existing and image_file.is_file()):
            if copy_image:
                shutil.copyfile(source_file, image_file)
            else:
                save_png(image_file, tile_image, compress_level=1)
        if not (keep_existing and mask_file.is_file()):
            save_index_png(mask_file, tile_mask, palette)
        files += [image_file.name, mask_file.name]
        tiles.append((tile_id, dominant_class(tile_mask, DEEPGLOBE_CLASSES.num_classes)))
    return TileResult(sample_id, tiles, files, source.unmatched_pixels - before)


@dataclass
class Tiling:
    """What tiling all source images produced: tiles per split, labels, files written."""

    splits: dict[str, list[str]]
    labels: dict[str, int] = field(default_factory=dict)
    written_files: set[str] = field(default_factory=set)
    unmatched_pixels: int = 0
    unmatched_masks: int = 0

    def add(self, result: TileResult, split: str) -> None:
        """Record one source image's tiles (in the split of that image)."""
        self.written_files.update(result.files)
        for tile_id, label in result.tiles:
            self.labels[tile_id] = label
            self.splits[split].append(tile_id)
        if result.unmatched_pixels:
            self.unmatched_pixels += result.unmatched_pixels
            self.unmatched_masks += 1

    def warn_unmatched(self, src_root: Path) -> None:
        """One warning on the colours that matched no class, if any."""
        if self.unmatched_pixels:
            logger.warning(
                "warning: %d pixel(s) in %d mask(s) of %s matched no DeepGlobe colour and were "
                "set to ignore (255); 'als4gan data stats --dataset deepglobe --root %s --split "
                "all' lists them",
                self.unmatched_pixels,
                self.unmatched_masks,
                src_root,
                src_root,
            )


@dataclass(frozen=True)
class TilingRun:
    """Tiles every source image into ``out_root`` (in worker processes when asked)."""

    source: DeepGlobeDataset
    out_root: Path
    config: DeepGlobePrepareConfig
    resume: bool

    def tile_all(
        self, image_splits: dict[str, list[str]], workers: int, show_progress: bool
    ) -> Tiling:
        """Tile the images, in source order; ``workers``: 0 = one per CPU, 1 = inline."""
        from als4gan.runtime import progress

        split_of = {sample_id: name for name, ids in image_splits.items() for sample_id in ids}
        (self.out_root / "images").mkdir(exist_ok=True)
        (self.out_root / "masks").mkdir(exist_ok=True)
        tiling = Tiling(splits={name: [] for name in image_splits})
        jobs = [
            (self.source, sample_id, self.out_root, self.config, self.resume)
            for sample_id in self.source.ids
        ]
        workers = min(len(jobs), workers if workers > 0 else (os.cpu_count() or 1))
        bar = progress(
            total=len(jobs), desc="tiling DeepGlobe", unit="img", disable=not show_progress or None
        )
        with contextlib.ExitStack() as stack:
            if workers > 1:
                pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
                results: Iterable[TileResult] = pool.map(tile_one, *zip(*jobs, strict=True))
            else:
                results = (tile_one(*job) for job in jobs)
            for result in results:
                bar.update(1)
                tiling.add(result, split_of[result.sample_id])
        bar.close()
        return tiling


__all__ = ["DeepGlobePrepareConfig", "TilingRun", "check_out", "remove_stale", "tile_one"]
