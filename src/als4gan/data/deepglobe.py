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

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from als4gan.data.base import ALL_SPLIT, SampleTransform, SegmentationDataset
from als4gan.data.deepglobe_format import (
    COLOR_THRESHOLD,
    DEEPGLOBE_CLASSES,
    IMAGE_SUFFIX,
    LAYOUT_HELP,
    MASK_SUFFIX,
    UNKNOWN_COLOR,
    find_pairs,
)
from als4gan.data.deepglobe_tiles import (
    DeepGlobePrepareConfig,
    Tiling,
    TilingRun,
    check_out,
    remove_stale,
)
from als4gan.data.encoding import IGNORE_INDEX, decode_binary_color_mask
from als4gan.data.imageio import read_mask_array, read_rgb
from als4gan.data.prepared import check_dataset_kind, finish_prepare, read_meta, start_prepare
from als4gan.data.splits import describe_splits, random_split, write_splits
from als4gan.errors import DataError, DatasetNotFoundError
from als4gan.io import read_json, write_json

logger = logging.getLogger(__name__)

#: Per-tile image-level labels written by ``prepare`` (saves reading every mask again).
LABELS_FILE = "image_labels.json"


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


def _write_prepared(
    out_root: Path,
    params: dict[str, Any],
    image_splits: dict[str, list[str]],
    tiling: Tiling,
) -> dict[str, Any]:
    """Write the tile splits, ``image_labels.json`` and (last) ``dataset.json``; its content."""
    written = write_splits(out_root, {name: sorted(ids) for name, ids in tiling.splits.items()})
    write_json(out_root / LABELS_FILE, tiling.labels)
    return finish_prepare(
        out_root,
        "deepglobe",
        params,
        num_source_images=sum(len(ids) for ids in image_splits.values()),
        num_tiles=len(tiling.labels),
        source_images=image_splits,
        split_sizes={name: len(ids) for name, ids in tiling.splits.items()},
        splits=sorted(written),
        unmatched_pixels=tiling.unmatched_pixels,
        unmatched_masks=tiling.unmatched_masks,
        classes=DEEPGLOBE_CLASSES.to_dict(),
        summary=describe_splits(tiling.splits),
    )


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
    config.validate()
    src_root, out_root = Path(src), Path(out)
    source = DeepGlobeDataset(src_root, ALL_SPLIT, warn_unmatched=False)
    check_out(src_root, out_root, force)
    params = {"source": str(src_root.resolve()), **asdict(config)}
    out_root.mkdir(parents=True, exist_ok=True)
    previous = read_meta(out_root)
    state = start_prepare(out_root, "deepglobe", params, force)
    if state == "complete":
        meta: dict[str, Any] = read_json(out_root / "dataset.json")
        return meta
    image_splits = random_split(source.ids, config.val_fraction, config.test_fraction, config.seed)
    run = TilingRun(source, out_root, config, resume=state == "resume")
    tiling = run.tile_all(image_splits, workers, show_progress)
    if previous is not None and previous.get("dataset") == "deepglobe":
        # files of an earlier preparation with other parameters (only ours are touched)
        remove_stale(out_root, tiling.written_files)
    tiling.warn_unmatched(src_root)
    return _write_prepared(out_root, params, image_splits, tiling)


__all__ = [
    "DEEPGLOBE_CLASSES",
    "DeepGlobeDataset",
    "DeepGlobePrepareConfig",
    "find_pairs",
    "prepare_deepglobe",
]
