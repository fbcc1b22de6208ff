"""The dataset contract: every dataset yields samples as dicts with image, mask, id and label.

A sample is ``{"image": FloatTensor[C, H, W] in [0, 1], "mask": LongTensor[H, W] (255 = ignore),
"id": str, "label": int}``. ``label`` is the image-level label used by active selection (the
scene class for UC Merced, the dominant pixel class elsewhere; -1 when unknown). Normalisation
to the backbone's statistics happens inside the models, so images stay in [0, 1] everywhere
(which is also what the s4GAN discriminator takes as its RGB input, stage 2 of docs/method.md).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from als4gan.data.encoding import ClassTable, dominant_class
from als4gan.data.imageio import scale_to_unit
from als4gan.errors import DataError, DatasetNotFoundError
from als4gan.io import read_ids

Sample = dict[str, Any]
SampleTransform = Callable[[Sample], Sample]

#: Name of the folder (under a dataset root) holding split files ``<split>.txt``.
SPLITS_DIR = "splits"
#: Split name meaning "every sample found under the root", no split file needed.
ALL_SPLIT = "all"


def split_path(root: str | Path, split: str) -> Path:
    """Where the id list of ``split`` lives under ``root``."""
    return Path(root) / SPLITS_DIR / f"{split}.txt"


def read_split(root: str | Path, split: str) -> list[str]:
    """Read the ids of ``split`` (a name under ``root/splits/`` or a path to a ``.txt`` file).

    Raises:
        DatasetNotFoundError: If the split file is missing (with the command that writes it).
        DataError: If it lists no ids.
    """
    path = Path(split) if split.endswith(".txt") else split_path(root, split)
    if not path.is_file():
        available = sorted(p.stem for p in (Path(root) / SPLITS_DIR).glob("*.txt"))
        hint = (
            f"Available splits: {', '.join(available)}."
            if available
            else "Run 'als4gan prepare <dataset> --out DIR' to write split files, or use "
            "--split all to read every image under the root."
        )
        raise DatasetNotFoundError(f"split file {path} does not exist. {hint}")
    ids = read_ids(path)
    if not ids:
        raise DataError(f"split file {path} is empty: it must list one image id per line")
    return ids


def check_sample_id(sample_id: str, source: str = "the split") -> str:
    r"""Return ``sample_id`` after checking it names a file inside the dataset root.

    Ids are file stems, optionally under sub-folders (``a/b``). Refused: empty ids, absolute
    paths (``/x``, ``C:/x``, ``\server\x``), ``..`` components and backslashes (a ``..\``
    would leave the root on Windows), and control characters.

    Args:
        sample_id: The id.
        source: Where it comes from (a split file, an id list), for the message.

    Raises:
        DataError: Naming the id, ``source`` and the fix.
    """
    problem = None
    if not sample_id or not sample_id.strip():
        problem = "is empty"
    elif re.search(r"[\x00-\x1f]", sample_id):
        problem = "holds control characters"
    elif "\\" in sample_id:
        problem = "holds a backslash (use '/' between sub-folders)"
    elif PurePosixPath(sample_id).is_absolute() or PureWindowsPath(sample_id).is_absolute():
        problem = "is an absolute path"
    elif re.match(r"^[A-Za-z]:", sample_id):
        problem = "starts with a drive letter"
    elif ".." in PurePosixPath(sample_id).parts:
        problem = "has a '..' component (it would read files outside the dataset root)"
    if problem is not None:
        raise DataError(
            f"sample id {sample_id!r} in {source} {problem}. Ids are file names without "
            "extension relative to the dataset's image folder; fix or remove that line."
        )
    return sample_id


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) array -> float32 (C, H, W) tensor in [0, 1].

    Pixels are scaled by :func:`als4gan.data.imageio.scale_to_unit` (``uint8`` / 255, float in
    [0, 1] kept, anything else refused); no-data pixels (NaN) are fed as 0.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    scaled = scale_to_unit(image)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))


def nodata_pixels(image: np.ndarray) -> np.ndarray | None:
    """(H, W) bool of the no-data pixels (NaN in any band) of a loaded image, or ``None``."""
    if not np.issubdtype(image.dtype, np.floating):
        return None
    invalid = np.isnan(image).any(axis=2) if image.ndim == 3 else np.isnan(image)
    return invalid if invalid.any() else None


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """(H, W) class-index array -> int64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64))


class SegmentationDataset(Dataset[Sample], abc.ABC):
    """Base class of all datasets: ids from a split, images and masks read per id.

    Subclasses set ``name`` and ``classes`` and implement :meth:`discover_ids`,
    :meth:`load_image` and :meth:`load_mask`.

    Args:
        root: Dataset root folder.
        split: Split name (``root/splits/<split>.txt``), a path to an id-list ``.txt``, or
            ``"all"`` for every sample found under the root.
        transform: Optional callable applied to each sample dict.
        ids: Explicit ids (overrides ``split``).
    """

    name: ClassVar[str] = "base"
    classes: ClassTable
    #: Names of the image-level labels (``label`` in samples); defaults to the pixel classes.
    label_names: tuple[str, ...]
    #: Number of image bands the images have.
    in_channels: int = 3

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: SampleTransform | None = None,
        ids: Sequence[str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self._verify_root()
        if ids is not None:
            self.ids = [check_sample_id(str(i), "the given ids") for i in ids]
        elif split == ALL_SPLIT:
            self.ids = sorted(self.discover_ids())
            if not self.ids:
                raise DataError(
                    f"no {self.name} image/mask pairs found under {self.root}. {self.layout_help()}"
                )
        else:
            self.ids = read_split(self.root, split)
            where = split if split.endswith(".txt") else str(split_path(self.root, split))
            for sample_id in self.ids:
                check_sample_id(sample_id, where)
        if not hasattr(self, "label_names"):
            self.label_names = self.classes.names

    # ------------------------------------------------------------------ to implement
    @abc.abstractmethod
    def discover_ids(self) -> list[str]:
        """All sample ids present under the root (used for ``split="all"`` and ``prepare``)."""

    @abc.abstractmethod
    def load_image(self, sample_id: str) -> np.ndarray:
        """The image of ``sample_id``: (H, W, C) ``uint8``, or float32 in [0, 1] (NaN = no data)."""

    @abc.abstractmethod
    def load_mask(self, sample_id: str) -> np.ndarray:
        """The decoded mask of ``sample_id`` as (H, W) ``uint8`` class indices (255 = ignore)."""

    def layout_help(self) -> str:
        """One sentence on the expected folder layout (for error messages)."""
        return ""

    # ------------------------------------------------------------------ provided
    def _verify_root(self) -> None:
        if not self.root.is_dir():
            raise DatasetNotFoundError(
                f"{self.name} dataset root {self.root} does not exist. {self.layout_help()}"
            )

    @property
    def num_classes(self) -> int:
        """Number of pixel classes."""
        return self.classes.num_classes

    def image_label(self, sample_id: str) -> int:
        """Image-level label of ``sample_id`` (default: dominant class of its mask)."""
        return dominant_class(
            self.load_mask(sample_id), self.num_classes, self.classes.ignore_index
        )

    def image_path(self, sample_id: str) -> Path | None:
        """Path of the image file of ``sample_id`` when there is one (for error messages)."""
        return None

    def mask_path(self, sample_id: str) -> Path | None:
        """Path of the mask file of ``sample_id`` when there is one (for error messages)."""
        return None

    def has_mask(self, sample_id: str) -> bool:
        """Whether ``sample_id`` has a mask (an id without one is unlabelled, not an error).

        Datasets whose every sample is labelled keep this default.
        """
        return True

    def __len__(self) -> int:
        return len(self.ids)

    def load_pair(self, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Image and decoded mask of ``sample_id``, checked to have the same size.

        No-data image pixels (NaN) are labelled ignore, so losses and metrics skip them.

        Raises:
            DataError: If their sizes differ.
        """
        image = self.load_image(sample_id)
        mask = self.load_mask(sample_id)
        if image.shape[:2] != mask.shape[:2]:
            raise DataError(
                f"{self.name} sample '{sample_id}': image {self.image_path(sample_id) or ''} is "
                f"{image.shape[1]}x{image.shape[0]} but mask {self.mask_path(sample_id) or ''} is "
                f"{mask.shape[1]}x{mask.shape[0]} (width x height). Re-export the mask at the "
                "image's size (nearest-neighbour resampling only) or drop the id from the split."
            )
        invalid = nodata_pixels(image)
        if invalid is not None:
            mask = mask.copy()
            mask[invalid] = self.classes.ignore_index
        return image, mask

    def __getitem__(self, index: int) -> Sample:
        sample_id = self.ids[index]
        image, mask = self.load_pair(sample_id)
        sample: Sample = {
            "image": image_to_tensor(image),
            "mask": mask_to_tensor(mask),
            "id": sample_id,
            "label": self._label_from_mask(sample_id, mask),
        }
        if self.transform is not None:
            sample = self.transform(sample)
        return sample

    def _label_from_mask(self, sample_id: str, mask: np.ndarray) -> int:
        """Image-level label when the mask is already loaded (subclasses may override)."""
        return dominant_class(mask, self.num_classes, self.classes.ignore_index)

    def subset(self, ids: Sequence[str]) -> SegmentationDataset:
        """A dataset of the same kind and root holding only ``ids`` (in that order)."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        clone.ids = [check_sample_id(str(i), "the given ids") for i in ids]
        return clone

    def preprocessing(self) -> dict[str, Any]:
        """How stored pixels become model inputs (recorded in checkpoints).

        Returns:
            ``bands``: 1-based bands read (``None`` = the first ones); ``image_max``: the stored
            value meaning 1.0 (``None`` = ``uint8`` / 255, float kept in [0, 1]).
        """
        return {"bands": None, "image_max": None}

    def describe(self) -> dict[str, Any]:
        """Metadata recorded in run folders and checkpoints."""
        return {
            "name": self.name,
            "root": str(self.root),
            "split": self.split,
            "num_samples": len(self),
            "in_channels": self.in_channels,
            "classes": self.classes.to_dict(),
            "label_names": list(self.label_names),
            "preprocessing": self.preprocessing(),
        }
