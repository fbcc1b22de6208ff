"""Datasets for the acquisition model: pool images read one at a time, augmented labelled images.

Neither ever holds more than one image per item: the pool is read lazily by a DataLoader in
batches, so memory does not grow with the pool (the reference code loads the whole pool into
memory as one batch, defect 9 in docs/method.md).

Resizing uses Pillow (:func:`als4gan.data.tiling.resize_image`), not
``torch.nn.functional.interpolate``: torch's CPU kernels give results that differ in the last bit
with the number of threads (DataLoader workers run one thread, the main process several), which
would make a selection depend on ``--num-workers``. Pillow's resampling is single-threaded and
exact, and antialiases when shrinking. The training augmentation is the one of ``als4gan train``
(:class:`als4gan.data.transforms.TrainAugment`) with this resize.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from als4gan.data.base import Sample, SegmentationDataset, image_to_tensor
from als4gan.data.encoding import IGNORE_INDEX
from als4gan.data.tiling import resize_image
from als4gan.data.transforms import TrainAugment, resize_sample_pillow


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
        resized = resize_image(
            image, self.image_size, self.image_size, shrink="bilinear", channels_first=True
        )
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
    ``image_size`` and randomly mirrored (docs/method.md, stage 1: random scale and mirror). This
    is :class:`als4gan.data.transforms.TrainAugment` (the training augmentation) with a
    ``base_size`` of ``image_size`` and the Pillow resize.

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
        self.with_mask = with_mask
        self.augment = TrainAugment(
            image_size,
            scale_range,
            mirror,
            ignore_index,
            resize=resize_sample_pillow,
            base_size=image_size,
        )

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, key: Any) -> Sample:
        index, seed = key
        generator = torch.Generator().manual_seed(int(seed))
        sample = self.augment(self.subset[int(index)], generator)
        item: Sample = {"image": sample["image"], "label": int(sample["label"])}
        if self.with_mask:
            item["mask"] = sample["mask"]
        return item
