"""Datasets for the acquisition model: pool images read one at a time, augmented labelled images.

Neither ever holds more than one image per item: the pool is read lazily by a DataLoader in
batches, so memory does not grow with the pool (the reference code loads the whole pool into
memory as one batch, defect 9 in docs/method.md).

Resizing uses Pillow, not ``torch.nn.functional.interpolate``: torch's CPU kernels give results
that differ in the last bit with the number of threads (DataLoader workers run one thread, the
main process several), which would make a selection depend on ``--num-workers``. Pillow's
resampling is single-threaded and exact, and antialiases when shrinking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from als4gan.data.base import Sample, SegmentationDataset, image_to_tensor
from als4gan.data.encoding import IGNORE_INDEX


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(C, H, W) float32 -> (C, height, width) float32, bilinear (antialiased when shrinking)."""
    if image.shape[1:] == (height, width):
        return image
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(band), mode="F").resize(
                (width, height), Image.Resampling.BILINEAR
            ),
            dtype=np.float32,
        )
        for band in image
    ]
    return np.stack(channels)


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) class indices (0..255) -> (height, width), nearest neighbour only.

    Pillow's ``NEAREST`` samples the source at output pixel centres (like torch's
    ``nearest-exact``), so the mask stays aligned with the bilinearly resized image; this is
    checked by tests/test_mask_alignment.py.
    """
    if mask.shape == (height, width):
        return mask
    resized = Image.fromarray(mask.astype(np.uint8), mode="L").resize(
        (width, height), Image.Resampling.NEAREST
    )
    return np.asarray(resized, dtype=np.uint8)


class PoolImages(Dataset[Sample]):
    """Pool images resized to ``image_size`` x ``image_size``, read only when requested.

    Items are ``{"image": FloatTensor[C, S, S], "position": int}`` plus ``"label"`` (the
    image-level label) when ``with_labels`` is set. Masks are not read otherwise.

    Args:
        dataset: The dataset the ids belong to.
        ids: Ids to read, in order; ``position`` is the index in this list.
        image_size: Side length of the square network input.
        with_labels: Also return the image-level label (reads the mask of every image).
    """

    def __init__(
        self,
        dataset: SegmentationDataset,
        ids: Sequence[str],
        image_size: int,
        with_labels: bool = False,
    ) -> None:
        self.dataset = dataset
        self.ids = list(ids)
        self.image_size = image_size
        self.with_labels = with_labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        sample_id = self.ids[index]
        image = image_to_tensor(self.dataset.load_image(sample_id)).numpy()
        resized = resize_image(image, self.image_size, self.image_size)
        item: Sample = {"image": torch.from_numpy(resized), "position": index}
        if self.with_labels:
            item["label"] = self.dataset.image_label(sample_id)
        return item


class TrainingImages(Dataset[Sample]):
    """Labelled images for fitting the acquisition model, augmented reproducibly.

    Items are requested as ``(index, seed)`` pairs (like
    :class:`als4gan.data.transforms.SeededDataset`): the augmentation of an item depends only on
    its seed, not on DataLoader workers or on what ran before.

    Each image is resized to ``image_size`` times a random factor in ``scale_range`` in one step
    (image bilinear, mask nearest, both sampled at pixel centres so they stay aligned), padded
    back to ``image_size`` when smaller (image 0, mask ignore), randomly cropped to
    ``image_size`` and randomly mirrored (docs/method.md, stage 1: random scale and mirror; the
    same draws as :class:`als4gan.data.transforms.TrainAugment`).

    Args:
        dataset: The dataset the ids belong to.
        ids: Labelled ids.
        image_size: Side length of the network input.
        scale_range: Random scale range, or ``None`` for no scaling.
        mirror: Random horizontal flip.
        with_mask: Return the mask too (segmentation mode).
        ignore_index: Mask value of padded pixels.
    """

    def __init__(
        self,
        dataset: SegmentationDataset,
        ids: Sequence[str],
        image_size: int,
        scale_range: tuple[float, float] | None,
        mirror: bool,
        with_mask: bool,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        self.subset = dataset.subset(list(ids))
        self.image_size = image_size
        self.scale_range = scale_range
        self.mirror = mirror
        self.with_mask = with_mask
        self.ignore_index = ignore_index

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, key: Any) -> Sample:
        index, seed = key
        sample = self.subset[int(index)]
        generator = torch.Generator().manual_seed(int(seed))
        size = scaled = self.image_size
        if self.scale_range is not None:
            low, high = self.scale_range
            scale = low + (high - low) * float(torch.rand((), generator=generator))
            scaled = max(1, int(size * scale + 0.5))
        # One resize straight to the scaled size: resizing twice (to ``size``, then scaling)
        # would compare a twice-blurred image with a twice-rounded mask and misalign edges.
        image = resize_image(sample["image"].numpy(), scaled, scaled)
        mask = resize_mask(sample["mask"].numpy(), scaled, scaled)
        pad = max(0, size - image.shape[1])
        if pad:
            image = np.pad(image, ((0, 0), (0, pad), (0, pad)), constant_values=0.0)
            mask = np.pad(mask, ((0, pad), (0, pad)), constant_values=self.ignore_index)
        top = int(torch.randint(0, image.shape[1] - size + 1, (), generator=generator))
        left = int(torch.randint(0, image.shape[2] - size + 1, (), generator=generator))
        image = image[:, top : top + size, left : left + size]
        mask = mask[top : top + size, left : left + size]
        if self.mirror and bool(torch.rand((), generator=generator) < 0.5):
            image = image[:, :, ::-1]
            mask = mask[:, ::-1]
        item: Sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image)),
            "label": int(sample["label"]),
        }
        if self.with_mask:
            item["mask"] = torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64))
        return item
