"""DeepGlobe Land Cover: the dataset reader and ``als4gan prepare deepglobe`` (split, then tile).

Files follow the DeepGlobe convention ``<id>_sat.<jpg|png>`` (RGB image) and ``<id>_mask.png``.
Accepted layouts under the root (the first that holds ``*_sat.*`` files wins; torchgeo's
training and test folders are read together):

- ``images/`` + ``masks/`` (a prepared folder, or any folder laid out that way);
- torchgeo's ``data/training_data/{images,masks}`` (and ``data/test_data/{images,masks}``);
- flat: ``<id>_sat.jpg`` next to ``<id>_mask.png`` in the root (the original download), or in
  ``root/train/`` (the Kaggle copy).

Masks are RGB colour masks decoded as in docs/data.md: every channel is thresholded at 128,
the six class colours map to classes 0..5, black ("unknown") and any colour that matches no class
map to ignore (255). Unmatched non-black pixels are counted; the first mask holding any is named in
a warning, the rest are only counted (:attr:`DeepGlobeDataset.unmatched_pixels`) and reported in
aggregate by ``als4gan prepare deepglobe`` and ``als4gan data stats``. Single-channel masks (as
written by ``prepare``: palette PNGs holding class indices) are read as indices 0..5 / 255.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from als4gan.data.base import ALL_SPLIT, SampleTransform, SegmentationDataset
from als4gan.data.encoding import (
    IGNORE_INDEX,
    ClassTable,
    decode_binary_color_mask,
    dominant_class,
)
from als4gan.data.imageio import read_mask_array, read_rgb, save_index_png, save_png
from als4gan.data.layout import scan_files
from als4gan.data.prepared import check_dataset_kind, finish_prepare, read_meta, start_prepare
from als4gan.data.splits import describe_splits, random_split, write_splits
from als4gan.data.tiling import (
    REMAINDER_MODES,
    crop_mask_tile,
    crop_tile,
    resize_image,
    resize_mask,
    scaled_size,
    tile_grid,
)
from als4gan.errors import ConfigError, DataError, DatasetNotFoundError
from als4gan.io import read_json, write_json

logger = logging.getLogger(__name__)

#: The six DeepGlobe land-cover classes and their mask colours (docs/data.md).
DEEPGLOBE_CLASSES = ClassTable(
    names=("urban", "agriculture", "rangeland", "forest", "water", "barren"),
    colors=(
        (0, 255, 255),
        (255, 255, 0),
        (255, 0, 255),
        (0, 255, 0),
        (0, 0, 255),
        (255, 255, 255),
    ),
)
#: Colour of "unknown" pixels: ignored, and not counted as unmatched.
UNKNOWN_COLOR = (0, 0, 0)
#: Channel threshold applied before colour matching (mask values are not always exactly 0/255).
COLOR_THRESHOLD = 128

IMAGE_SUFFIX = "_sat"
MASK_SUFFIX = "_mask"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp")
#: (images folder, masks folder) candidates relative to the root, in the order they are tried.
LAYOUTS: tuple[tuple[str, ...], ...] = (
    ("images", "masks"),
    ("data/training_data/images", "data/training_data/masks"),
    ("data/test_data/images", "data/test_data/masks"),
    (".", "."),
    ("train", "train"),
)
#: Layouts read together when several are present (torchgeo's training + test folders).
_COMBINED = {LAYOUTS[1], LAYOUTS[2]}
#: Per-tile image-level labels written by ``prepare`` (saves reading every mask again).
LABELS_FILE = "image_labels.json"

LAYOUT_HELP = (
    "Expected <id>_sat.jpg images with <id>_mask.png masks in ROOT/images + ROOT/masks, "
    "in torchgeo's ROOT/data/training_data/{images,masks}, or side by side in ROOT (or "
    "ROOT/train) as in the original download."
)


def _strip(name: str, suffix: str) -> str | None:
    stem = Path(name).stem
    return stem[: -len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else None


def _image_id(path: Path) -> str | None:
    return _strip(path.name, IMAGE_SUFFIX)


def _mask_id(path: Path) -> str | None:
    return _strip(path.name, MASK_SUFFIX)


def find_pairs(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Scan ``root`` for DeepGlobe files.

    Returns:
        (id -> image path, id -> mask path); the mask dict lacks ids without a mask.

    Raises:
        DataError: If one id has several image files.
    """
    images: dict[str, Path] = {}
    masks: dict[str, Path] = {}
    used: list[tuple[str, ...]] = []
    for layout in LAYOUTS:
        if used and not (layout in _COMBINED and set(used) <= _COMBINED):
            break
        image_dir, mask_dir = root / layout[0], root / layout[1]
        if not image_dir.is_dir():
            continue
        found, _ = scan_files(image_dir, IMAGE_EXTENSIONS, _image_id, label="DeepGlobe id")
        if not found:
            continue
        twice = next((sample_id for sample_id in found if sample_id in images), None)
        if twice is not None:
            raise DataError(
                f"DeepGlobe id '{twice}' has two images: {images[twice]} and {found[twice]}. "
                "Keep one of them."
            )
        used.append(layout)
        images.update(found)
        if mask_dir.is_dir():
            layout_masks, _ = scan_files(mask_dir, MASK_EXTENSIONS, _mask_id, duplicates="last")
            masks.update((i, path) for i, path in layout_masks.items() if i in found)
    return images, masks


class DeepGlobeDataset(SegmentationDataset):
    """DeepGlobe Land Cover (6 classes, RGB colour masks) in any of the accepted layouts.

    Args:
        root: Dataset root (a raw download or a folder written by ``prepare deepglobe``).
        split: Split name under ``root/splits``, an id-list ``.txt`` or ``"all"``.
        transform: Optional sample transform.
        ids: Explicit ids (overrides ``split``).
        warn_unmatched: Log a warning for the first mask with unmatched colours.
    """

    name = "deepglobe"
    classes = DEEPGLOBE_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: SampleTransform | None = None,
        ids: Sequence[str] | None = None,
        warn_unmatched: bool = True,
    ) -> None:
        self.meta = check_dataset_kind(root, self.name)
        self.warn_unmatched = warn_unmatched
        #: Pixels (and masks) whose colour matched no class, counted since construction.
        self.unmatched_pixels = 0
        self.unmatched_masks = 0
        self._images: dict[str, Path] = {}
        self._masks: dict[str, Path] = {}
        self._labels: dict[str, int] | None = None
        super().__init__(root, split, transform, ids)
        missing = [sample_id for sample_id in self.ids if sample_id not in self._images]
        if missing and split != ALL_SPLIT:
            raise DatasetNotFoundError(
                f"{len(missing)} id(s) of split '{split}' have no image under {self.root}, "
                f"e.g. '{missing[0]}' (expected {missing[0]}{IMAGE_SUFFIX}.jpg or .png). "
                f"{LAYOUT_HELP} Re-run 'als4gan prepare deepglobe' if files were moved."
            )
        labels_path = self.root / LABELS_FILE
        if labels_path.is_file():
            self._labels = {str(k): int(v) for k, v in read_json(labels_path).items()}

    def layout_help(self) -> str:
        """Expected layout."""
        return LAYOUT_HELP

    def _verify_root(self) -> None:
        super()._verify_root()
        self._images, self._masks = find_pairs(self.root)
        if not self._images:
            raise DatasetNotFoundError(
                f"no DeepGlobe images (<id>_sat.jpg) found under {self.root}. {LAYOUT_HELP}"
            )

    def discover_ids(self) -> list[str]:
        """Ids that have both an image and a mask (images without a mask are reported)."""
        without = sorted(set(self._images) - set(self._masks))
        if without:
            logger.warning(
                "%d DeepGlobe image(s) under %s have no <id>_mask.png and are left out (e.g. %s)",
                len(without),
                self.root,
                self._images[without[0]],
            )
        return sorted(set(self._images) & set(self._masks))

    def image_path(self, sample_id: str) -> Path:
        """Path of ``<id>_sat.*``."""
        path = self._images.get(sample_id)
        if path is None:
            raise DatasetNotFoundError(
                f"DeepGlobe image {sample_id}{IMAGE_SUFFIX}.jpg not found under {self.root}. "
                f"{LAYOUT_HELP}"
            )
        return path

    def mask_path(self, sample_id: str) -> Path:
        """Path of ``<id>_mask.png``."""
        path = self._masks.get(sample_id)
        if path is None:
            image = self._images.get(sample_id)
            folder = image.parent if image is not None else self.root
            raise DatasetNotFoundError(
                f"mask {folder / (sample_id + MASK_SUFFIX + '.png')} for image "
                f"{image or sample_id} does not exist. Add the mask or drop the id from the split."
            )
        return path

    def load_image(self, sample_id: str) -> np.ndarray:
        """RGB ``uint8`` image."""
        return read_rgb(self.image_path(sample_id))

    def load_mask(self, sample_id: str) -> np.ndarray:
        """Class indices 0..5, 255 = ignore (unknown or unmatched colours)."""
        path = self.mask_path(sample_id)
        stored = read_mask_array(path)
        if stored.ndim == 2:
            bad = np.unique(stored[(stored >= self.num_classes) & (stored != IGNORE_INDEX)])
            if bad.size:
                raise DataError(
                    f"{path} is a single-channel mask holding value(s) {bad.tolist()[:10]} "
                    f"outside the DeepGlobe classes (0..{self.num_classes - 1}, 255 = ignore). "
                    "Use the original RGB colour mask, or re-run 'als4gan prepare deepglobe'."
                )
            return stored.astype(np.uint8)
        mask, unmatched = decode_binary_color_mask(
            stored,
            self.classes.colors,
            threshold=COLOR_THRESHOLD,
            ignore_index=IGNORE_INDEX,
            ignore_colors=(UNKNOWN_COLOR,),
        )
        if unmatched:
            self.unmatched_pixels += unmatched
            self.unmatched_masks += 1
            if self.warn_unmatched and self.unmatched_masks == 1:
                logger.warning(
                    "%s: %d pixel(s) match no DeepGlobe colour (after thresholding at %d) and "
                    "are set to ignore (255). Further such masks are only counted; "
                    "'als4gan data stats' lists them all.",
                    path,
                    unmatched,
                    COLOR_THRESHOLD,
                )
        return mask

    def image_label(self, sample_id: str) -> int:
        """Dominant class (ignore excluded); read from ``image_labels.json`` when prepared."""
        if self._labels is not None and sample_id in self._labels:
            return self._labels[sample_id]
        return super().image_label(sample_id)

    def unmatched_summary(self) -> str | None:
        """One line on the unmatched colours met so far, or None when there were none."""
        if not self.unmatched_pixels:
            return None
        return (
            f"{self.unmatched_pixels} pixel(s) in {self.unmatched_masks} mask(s) matched no "
            "DeepGlobe colour and were set to ignore (255)"
        )


# ---------------------------------------------------------------------------- preparation
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


def _check_out(src: Path, out: Path, force: bool) -> None:
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


def _remove_stale(out: Path, keep_files: set[str]) -> int:
    """Delete tiles of an earlier preparation that the new one did not write."""
    removed = 0
    for folder, suffix in (("images", IMAGE_SUFFIX), ("masks", MASK_SUFFIX)):
        directory = out / folder
        if not directory.is_dir():
            continue
        for path in directory.iterdir():
            if _strip(path.name, suffix) is not None and path.name not in keep_files:
                path.unlink()
                removed += 1
    return removed


@dataclass(frozen=True)
class _TileResult:
    """What preparing one source image produced (returned from worker processes)."""

    sample_id: str
    tiles: list[tuple[str, int]]  # (tile id, dominant class)
    files: list[str]
    unmatched_pixels: int


def _tile_one(
    source: DeepGlobeDataset,
    sample_id: str,
    out_root: Path,
    config: DeepGlobePrepareConfig,
    keep_existing: bool,
) -> _TileResult:
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
    return _TileResult(sample_id, tiles, files, source.unmatched_pixels - before)


def prepare_deepglobe(
    src: str | Path,
    out: str | Path,
    config: DeepGlobePrepareConfig,
    force: bool = False,
    show_progress: bool = True,
    workers: int = 0,
) -> dict[str, Any]:
    """Split DeepGlobe at image level, then tile every image into ``out``.

    Writes ``out/images/<tile>_sat.png`` (lossless RGB; with ``tile_size=0`` and ``scale=1``
    the source image file is copied unchanged), ``out/masks/<tile>_mask.png`` (palette PNG of
    class indices, 255 = ignore, shown in DeepGlobe colours), ``out/splits/{train,val,test}.txt``
    (tile ids), ``out/image_labels.json`` (dominant class per tile) and ``out/dataset.json``
    (written last). A re-run with the same parameters does nothing; an interrupted run resumes.

    Args:
        src: Raw DeepGlobe folder (any layout :class:`DeepGlobeDataset` accepts).
        out: Output folder.
        config: Tiling and split parameters.
        force: Overwrite a folder prepared with other parameters.
        show_progress: Show a progress bar.
        workers: Processes decoding and writing images in parallel (0 = one per CPU, 1 = no
            extra process).

    Returns:
        The metadata written to ``dataset.json``.

    Raises:
        DatasetNotFoundError: If ``src`` holds no DeepGlobe pairs.
        DataError: On a corrupt image, a size mismatch or a bad mask (message names the file).
        RunExistsError: If ``out`` was prepared with other parameters and ``force`` is false.
    """
    from als4gan.runtime import progress

    config.validate()
    src_root, out_root = Path(src), Path(out)
    source = DeepGlobeDataset(src_root, ALL_SPLIT, warn_unmatched=False)
    _check_out(src_root, out_root, force)
    params = {"source": str(src_root.resolve()), **asdict(config)}
    out_root.mkdir(parents=True, exist_ok=True)
    previous = read_meta(out_root)
    state = start_prepare(out_root, "deepglobe", params, force)
    if state == "complete":
        meta: dict[str, Any] = read_json(out_root / "dataset.json")
        return meta
    image_splits = random_split(source.ids, config.val_fraction, config.test_fraction, config.seed)
    split_of = {sample_id: name for name, ids in image_splits.items() for sample_id in ids}
    (out_root / "images").mkdir(exist_ok=True)
    (out_root / "masks").mkdir(exist_ok=True)
    tile_splits: dict[str, list[str]] = {name: [] for name in image_splits}
    labels: dict[str, int] = {}
    written_files: set[str] = set()
    unmatched_pixels = unmatched_masks = 0
    jobs = [(source, sample_id, out_root, config, state == "resume") for sample_id in source.ids]
    workers = min(len(jobs), workers if workers > 0 else (os.cpu_count() or 1))
    bar = progress(
        total=len(jobs), desc="tiling DeepGlobe", unit="img", disable=not show_progress or None
    )
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers))
            results: Iterable[_TileResult] = pool.map(_tile_one, *zip(*jobs, strict=True))
        else:
            results = (_tile_one(*job) for job in jobs)
        for result in results:
            bar.update(1)
            written_files.update(result.files)
            for tile_id, label in result.tiles:
                labels[tile_id] = label
                tile_splits[split_of[result.sample_id]].append(tile_id)
            if result.unmatched_pixels:
                unmatched_pixels += result.unmatched_pixels
                unmatched_masks += 1
    bar.close()
    if previous is not None and previous.get("dataset") == "deepglobe":
        # files of an earlier preparation with other parameters (only ours are touched)
        _remove_stale(out_root, written_files)
    written = write_splits(out_root, {name: sorted(ids) for name, ids in tile_splits.items()})
    write_json(out_root / LABELS_FILE, labels)
    if unmatched_pixels:
        logger.warning(
            "warning: %d pixel(s) in %d mask(s) of %s matched no DeepGlobe colour and were set "
            "to ignore (255); 'als4gan data stats --dataset deepglobe --root %s --split all' "
            "lists them",
            unmatched_pixels,
            unmatched_masks,
            src_root,
            src_root,
        )
    return finish_prepare(
        out_root,
        "deepglobe",
        params,
        num_source_images=len(source.ids),
        num_tiles=len(labels),
        source_images=image_splits,
        split_sizes={name: len(ids) for name, ids in tile_splits.items()},
        splits=sorted(written),
        unmatched_pixels=unmatched_pixels,
        unmatched_masks=unmatched_masks,
        classes=DEEPGLOBE_CLASSES.to_dict(),
        summary=describe_splits(tile_splits),
    )


__all__ = [
    "DEEPGLOBE_CLASSES",
    "DeepGlobeDataset",
    "DeepGlobePrepareConfig",
    "find_pairs",
    "prepare_deepglobe",
]
