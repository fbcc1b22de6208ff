"""UC Merced Land Use images with DLRSD pixel labels; ``als4gan prepare ucm`` (stratified split).

Images are ``<scene><NN>.tif`` (21 scene classes, 100 images each); DLRSD labels are palette PNGs
``<scene><NN>.png`` holding values 1..17 (docs/data.md), mapped to classes 0..16. Accepted
layouts under the root (the first existing folder of each list is used; inside it files may be
nested by scene, ``<scene>/<scene><NN>.tif``, or flat):

- images: ``Images/`` (the UC Merced archive), ``UCMerced_LandUse/Images/``,
  ``UCMerced_Images/`` (flat, as in the reference code), ``images/``;
- labels: ``Labels/``, ``DLRSD/Images/`` (the DLRSD archive), ``DLRSD/Labels/``, ``DLRSD/``,
  ``UCMerced_Labels/``, ``labels/``, ``masks/``.

Samples carry the scene class (alphabetical index, 21 classes) as image-level ``label``:
``label_names`` are the 21 scenes while ``classes`` are the 17 DLRSD pixel classes.

Label values: 1..17 are classes 0..16 and 255 is read as ignore; any other value (0 included,
which DLRSD never uses) is an error naming the file, because it means the label file is not a
DLRSD label (or is damaged) rather than a pixel to learn from.

Image sizes: 44 UC Merced images are 247-256 px instead of 256x256. The label is the ground
truth, so a label and image whose sides differ by at most 10% are reconciled by resizing the
image (bilinear) to the label's size; labels are never resampled. Larger differences are a size
mismatch error. Images keep their own size otherwise (training crops pad them with ignore).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from als4gan.data.base import ALL_SPLIT, SampleTransform, SegmentationDataset
from als4gan.data.encoding import IGNORE_INDEX, ClassTable, decode_index_mask
from als4gan.data.imageio import read_mask_array, read_rgb
from als4gan.data.layout import first_dir, scan_files
from als4gan.data.prepared import (
    check_dataset_kind,
    data_root,
    finish_prepare,
    read_meta,
    source_reference,
    start_prepare,
)
from als4gan.data.splits import describe_splits, stratified_split, write_splits
from als4gan.data.tiling import resize_image
from als4gan.errors import DataError, DatasetNotFoundError

logger = logging.getLogger(__name__)

#: The 21 UC Merced scene classes; alphabetical order = image-level label index.
UCM_SCENES = (
    "agricultural",
    "airplane",
    "baseballdiamond",
    "beach",
    "buildings",
    "chaparral",
    "denseresidential",
    "forest",
    "freeway",
    "golfcourse",
    "harbor",
    "intersection",
    "mediumresidential",
    "mobilehomepark",
    "overpass",
    "parkinglot",
    "river",
    "runway",
    "sparseresidential",
    "storagetanks",
    "tenniscourt",
)

#: The 17 DLRSD pixel classes (stored values 1..17 -> indices 0..16) and display colours.
DLRSD_CLASSES = ClassTable(
    names=(
        "airplane",
        "bare soil",
        "buildings",
        "cars",
        "chaparral",
        "court",
        "dock",
        "field",
        "grass",
        "mobile home",
        "pavement",
        "sand",
        "sea",
        "ship",
        "tanks",
        "trees",
        "water",
    ),
    colors=(
        (230, 25, 75),
        (170, 110, 40),
        (128, 0, 0),
        (255, 225, 25),
        (128, 128, 0),
        (245, 130, 48),
        (70, 240, 240),
        (210, 245, 60),
        (60, 180, 75),
        (240, 50, 230),
        (128, 128, 128),
        (255, 215, 180),
        (0, 0, 128),
        (145, 30, 180),
        (250, 190, 212),
        (0, 100, 0),
        (0, 130, 200),
    ),
)
#: DLRSD stored value -> class index.
DLRSD_VALUES = {value: value - 1 for value in range(1, 18)}

IMAGE_DIRS = ("Images", "UCMerced_LandUse/Images", "UCMerced_Images", "images")
LABEL_DIRS = (
    "Labels",
    "DLRSD/Images",
    "DLRSD/Labels",
    "DLRSD",
    "UCMerced_Labels",
    "labels",
    "masks",
)
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
LABEL_EXTENSIONS = (".png", ".tif", ".tiff")
#: Largest relative side difference between image and label that is fixed by resizing the image.
SIZE_TOLERANCE = 0.10
_ID_PATTERN = re.compile(r"^([a-z]+)(\d+)$")

LAYOUT_HELP = (
    "Expected UC Merced images in ROOT/Images/<scene>/<scene>NN.tif (or ROOT/UCMerced_Images/) "
    "and DLRSD labels in ROOT/Labels/<scene>/<scene>NN.png (or ROOT/DLRSD/Images/, "
    "ROOT/UCMerced_Labels/)."
)


def scene_of(sample_id: str) -> str | None:
    """Scene class named by an id like ``tenniscourt07`` (None if it names none)."""
    match = _ID_PATTERN.match(sample_id)
    if match is None or match.group(1) not in UCM_SCENES:
        return None
    return match.group(1)


def _scene_id(path: Path) -> str | None:
    """The id a UC Merced file gives: its stem when it names one of the 21 scenes."""
    return path.stem if scene_of(path.stem) is not None else None


def _scan(folder: Path, extensions: Sequence[str]) -> tuple[dict[str, Path], list[Path]]:
    """Map ids to files in ``folder`` and its sub-folders (one level); also unparsable files."""
    return scan_files(folder, extensions, _scene_id, nested=True, label="UC Merced id")


class UCMercedDataset(SegmentationDataset):
    """UC Merced images + DLRSD labels: 17 pixel classes, 21 scene classes as image labels.

    Args:
        root: The raw folder (see the module docstring) or a folder written by ``prepare ucm``.
        split: Split name under ``root/splits``, an id-list ``.txt`` or ``"all"``.
        transform: Optional sample transform.
        ids: Explicit ids (overrides ``split``).
    """

    name = "ucm"
    classes = DLRSD_CLASSES
    label_names = UCM_SCENES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: SampleTransform | None = None,
        ids: Sequence[str] | None = None,
    ) -> None:
        self.meta = check_dataset_kind(root, self.name)
        self.data_root = Path(root)
        self._images: dict[str, Path] = {}
        self._labels: dict[str, Path] = {}
        super().__init__(root, split, transform, ids)
        missing = [sample_id for sample_id in self.ids if sample_id not in self._images]
        if missing:
            raise DatasetNotFoundError(
                f"{len(missing)} id(s) of split '{split}' have no image under {self.data_root}, "
                f"e.g. '{missing[0]}'. {LAYOUT_HELP}"
            )

    def layout_help(self) -> str:
        """Expected layout."""
        return LAYOUT_HELP

    def _verify_root(self) -> None:
        super()._verify_root()
        self.data_root = data_root(self.root, self.meta)
        image_dir = first_dir(self.data_root, IMAGE_DIRS)
        label_dir = first_dir(self.data_root, LABEL_DIRS)
        if image_dir is None:
            raise DatasetNotFoundError(
                f"no UC Merced image folder under {self.data_root} (looked for "
                f"{', '.join(IMAGE_DIRS)}). {LAYOUT_HELP}"
            )
        if label_dir is None:
            raise DatasetNotFoundError(
                f"no DLRSD label folder under {self.data_root} (looked for "
                f"{', '.join(LABEL_DIRS)}). Download DLRSD and extract it next to the images. "
                f"{LAYOUT_HELP}"
            )
        self._images, skipped = _scan(image_dir, IMAGE_EXTENSIONS)
        self._labels, _ = _scan(label_dir, LABEL_EXTENSIONS)
        if not self._images:
            raise DatasetNotFoundError(
                f"no UC Merced images (<scene>NN.tif) found in {image_dir}. {LAYOUT_HELP}"
            )
        if skipped:
            logger.warning(
                "%d file(s) in %s are not named <scene><NN> with one of the 21 UC Merced "
                "scenes and are left out (e.g. %s)",
                len(skipped),
                image_dir,
                skipped[0],
            )

    def discover_ids(self) -> list[str]:
        """Ids with both an image and a DLRSD label (images without a label are reported)."""
        without = sorted(set(self._images) - set(self._labels))
        if without:
            logger.warning(
                "%d UC Merced image(s) have no DLRSD label and are left out (e.g. %s)",
                len(without),
                self._images[without[0]],
            )
        return sorted(set(self._images) & set(self._labels))

    def image_path(self, sample_id: str) -> Path:
        """The ``.tif`` of ``sample_id``."""
        path = self._images.get(sample_id)
        if path is None:
            raise DatasetNotFoundError(
                f"UC Merced image '{sample_id}' not found under {self.data_root}. {LAYOUT_HELP}"
            )
        return path

    def mask_path(self, sample_id: str) -> Path:
        """The DLRSD ``.png`` of ``sample_id``."""
        path = self._labels.get(sample_id)
        if path is None:
            raise DatasetNotFoundError(
                f"DLRSD label {sample_id}.png for image {self._images.get(sample_id, sample_id)} "
                f"not found under {self.data_root}. Add the label or drop the id from the split."
            )
        return path

    def load_image(self, sample_id: str) -> np.ndarray:
        """RGB ``uint8`` image at its own size."""
        return read_rgb(self.image_path(sample_id))

    def load_mask(self, sample_id: str) -> np.ndarray:
        """DLRSD values 1..17 -> classes 0..16 (255 stays ignore).

        Raises:
            DataError: If the label is not single-channel or holds other values.
        """
        path = self.mask_path(sample_id)
        stored = read_mask_array(path)
        if stored.ndim != 2:
            raise DataError(
                f"{path} is a colour image; DLRSD labels are palette PNGs holding values 1..17. "
                "Use the label files from the DLRSD archive unchanged."
            )
        mask, bad = decode_index_mask(
            stored, self.num_classes, DLRSD_VALUES, ignore_values=(IGNORE_INDEX,)
        )
        if bad.size:
            raise DataError(
                f"{path} holds value(s) {bad.tolist()[:10]} outside the DLRSD table (1..17 = "
                f"{self.classes.names[0]}..{self.classes.names[-1]}, 255 = ignore; 0 never "
                "occurs in DLRSD). The file is not a DLRSD label or is damaged: re-extract it, "
                "or drop the id from the split."
            )
        return mask

    def load_pair(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Image and label; an image within 10% of the label's size is resized to it."""
        image = self.load_image(sample_id)
        mask = self.load_mask(sample_id)
        (ih, iw), (mh, mw) = image.shape[:2], mask.shape[:2]
        if (ih, iw) != (mh, mw):
            if abs(ih - mh) <= SIZE_TOLERANCE * mh and abs(iw - mw) <= SIZE_TOLERANCE * mw:
                image = resize_image(image, mh, mw)
            else:
                raise DataError(
                    f"ucm sample '{sample_id}': image {self.image_path(sample_id)} is {iw}x{ih} "
                    f"but label {self.mask_path(sample_id)} is {mw}x{mh} (width x height), more "
                    "than 10% apart. Use the DLRSD label of this image, or drop the id from the "
                    "split."
                )
        return image, mask

    def image_label(self, sample_id: str) -> int:
        """Scene class index from the id (no file is read)."""
        scene = scene_of(sample_id)
        if scene is None:
            raise DataError(
                f"UC Merced id '{sample_id}' does not start with one of the 21 scene names "
                f"({', '.join(UCM_SCENES)}); fix the split file"
            )
        return UCM_SCENES.index(scene)

    def _label_from_mask(self, sample_id: str, mask: np.ndarray) -> int:
        return self.image_label(sample_id)


def prepare_ucm(
    src: str | Path,
    out: str | Path,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    force: bool = False,
) -> dict[str, Any]:
    """Write a split of UC Merced + DLRSD, stratified by scene class, without copying images.

    ``out/splits/{train,val,test}.txt`` list image ids; ``out/dataset.json`` records where the
    images are (``source``), so later stages read ``--dataset ucm --root OUT``. ``out`` may be
    ``src`` itself (the lists are then written next to the data).

    Returns:
        The metadata written to ``dataset.json``.
    """
    src_root, out_root = Path(src), Path(out)
    if src_root.resolve() != out_root.resolve() and read_meta(src_root) is not None:
        # reading a prepared folder as source would nest pointers; read its source instead
        src_root = data_root(src_root, read_meta(src_root))
    dataset = UCMercedDataset(src_root, ALL_SPLIT)
    params = {
        "source": str(src_root.resolve()),
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "stratify": "scene",
    }
    out_root.mkdir(parents=True, exist_ok=True)
    if start_prepare(out_root, "ucm", params, force) == "complete":
        meta: dict[str, Any] = read_meta(out_root) or {}
        return meta
    labels = [dataset.image_label(sample_id) for sample_id in dataset.ids]
    splits = stratified_split(dataset.ids, labels, val_fraction, test_fraction, seed)
    written = write_splits(out_root, splits)
    return finish_prepare(
        out_root,
        "ucm",
        params,
        source=source_reference(out_root, src_root),
        num_images=len(dataset.ids),
        split_sizes={name: len(ids) for name, ids in splits.items()},
        splits=sorted(written),
        summary=describe_splits(splits),
    )


__all__ = ["DLRSD_CLASSES", "UCM_SCENES", "UCMercedDataset", "prepare_ucm", "scene_of"]
