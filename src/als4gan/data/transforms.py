"""Sample transforms (dict in, dict out). Random ones take an explicit ``torch.Generator``.

Training augmentation (stage 2 of docs/method.md): random scale 0.5-1.5, pad to the crop with
ignore, random crop, random horizontal mirror. Images are resized bilinearly and masks with nearest
neighbour only (never blending labels, a defect of the reference code). Both sample at pixel
centres (``align_corners=False`` and ``nearest-exact``), so a mask stays aligned with its image:
torch's legacy ``nearest`` samples at top-left corners and moves edges by up to one pixel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from als4gan.data.base import Sample, SegmentationDataset
from als4gan.data.encoding import IGNORE_INDEX

RandomTransform = Callable[[Sample, torch.Generator], Sample]
#: Resizes a sample's image (bilinear) and mask (nearest) to ``(height, width)``.
SampleResize = Callable[[Sample, int, int], Sample]

log = logging.getLogger(__name__)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def resize_sample(sample: Sample, height: int, width: int) -> Sample:
    """Resize image (bilinear) and mask (nearest) to (height, width), aligned at pixel centres.

    The mask uses ``nearest-exact`` (the source pixel whose centre is nearest), which picks the
    class the bilinear image is closest to: an edge stays in the same column in image and mask.
    """
    out = dict(sample)
    image = sample["image"]
    if tuple(image.shape[-2:]) != (height, width):
        out["image"] = F.interpolate(
            image[None], size=(height, width), mode="bilinear", align_corners=False
        )[0]
        if "mask" in sample:
            out["mask"] = F.interpolate(
                sample["mask"][None, None].float(), size=(height, width), mode="nearest-exact"
            )[0, 0].long()
    return out


def resize_sample_pillow(sample: Sample, height: int, width: int) -> Sample:
    """:func:`resize_sample` with Pillow: the same for any number of threads.

    The image is resized band by band as 32-bit float images (bilinear, antialiased when
    shrinking; :func:`als4gan.data.tiling.resize_image`), the mask with nearest neighbour at
    pixel centres (:func:`als4gan.data.tiling.resize_mask`, int64 out). Used for the acquisition
    model of ``als4gan select``, whose selection must not depend on ``--num-workers``.
    """
    from als4gan.data.tiling import resize_image, resize_mask

    out = dict(sample)
    image = sample["image"].numpy()
    out["image"] = torch.from_numpy(
        resize_image(image, height, width, shrink="bilinear", channels_first=True)
    )
    if "mask" in sample:
        mask = resize_mask(sample["mask"].numpy().astype(np.uint8), height, width)
        out["mask"] = torch.from_numpy(mask.astype(np.int64))
    return out


def pad_sample(sample: Sample, height: int, width: int, ignore_index: int = IGNORE_INDEX) -> Sample:
    """Pad bottom/right to at least (height, width): image with 0, mask with ``ignore_index``."""
    image = sample["image"]
    pad_h = max(0, height - image.shape[-2])
    pad_w = max(0, width - image.shape[-1])
    if pad_h == 0 and pad_w == 0:
        return sample
    out = dict(sample)
    out["image"] = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
    if "mask" in sample:
        out["mask"] = F.pad(sample["mask"], (0, pad_w, 0, pad_h), value=ignore_index)
    return out


class TrainAugment:
    """Random scale, pad, crop and mirror (the s4GAN training augmentation).

    The same draws serve the acquisition model of ``als4gan select`` (``base_size``, Pillow
    ``resize``): there the whole image is resized in one step to a square of ``base_size``
    times the random scale (resizing twice would compare a twice-blurred image with a
    twice-rounded mask), then padded, cropped and mirrored the same way.

    Args:
        crop_size: Output side length.
        scale_range: Random scale factor range; ``None`` disables scaling.
        mirror: Random horizontal flip.
        ignore_index: Mask value of padded pixels.
        resize: How image and mask are resized (default torch, :func:`resize_sample`;
            :func:`resize_sample_pillow` gives the same result for any number of threads).
        base_size: Scale a ``base_size`` square instead of the image's own size (and resize to
            it without ``scale_range``).
    """

    def __init__(
        self,
        crop_size: int,
        scale_range: tuple[float, float] | None = (0.5, 1.5),
        mirror: bool = True,
        ignore_index: int = IGNORE_INDEX,
        *,
        resize: SampleResize = resize_sample,
        base_size: int | None = None,
    ) -> None:
        self.crop_size = crop_size
        self.scale_range = scale_range
        self.mirror = mirror
        self.ignore_index = ignore_index
        self.resize = resize
        self.base_size = base_size
        self.warned_small = False

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample:
        """Augment one sample with randomness drawn from ``generator`` only.

        An image smaller than the crop is padded (image 0, mask ignore); the first one is
        reported with a warning (once per process).
        """
        height, width = sample["image"].shape[-2:]
        small = height < self.crop_size or width < self.crop_size
        if small and self.base_size is None and not self.warned_small:
            self.warned_small = True
            log.warning(
                "image '%s' is %dx%d px, smaller than the %d px training crop: it is padded "
                "(padding is ignored by the losses). Many such images waste compute; use a "
                "smaller --crop-size or larger tiles (warned once)",
                sample.get("id", "?"),
                width,
                height,
                self.crop_size,
            )
        if self.base_size is not None:
            height = width = self.base_size
        if self.scale_range is not None:
            scale = _uniform(generator, *self.scale_range)
            sample = self.resize(
                sample, max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))
            )
        elif self.base_size is not None:
            sample = self.resize(sample, self.base_size, self.base_size)
        sample = pad_sample(sample, self.crop_size, self.crop_size, self.ignore_index)
        height, width = sample["image"].shape[-2:]
        top = int(torch.randint(0, height - self.crop_size + 1, (), generator=generator))
        left = int(torch.randint(0, width - self.crop_size + 1, (), generator=generator))
        out = dict(sample)
        out["image"] = sample["image"][:, top : top + self.crop_size, left : left + self.crop_size]
        if "mask" in sample:
            out["mask"] = sample["mask"][top : top + self.crop_size, left : left + self.crop_size]
        if self.mirror and bool(torch.rand((), generator=generator) < 0.5):
            out["image"] = out["image"].flip(-1)
            if "mask" in out:
                out["mask"] = out["mask"].flip(-1)
        out["image"] = out["image"].contiguous()
        if "mask" in out:
            out["mask"] = out["mask"].contiguous()
        return out


class SeededDataset(Dataset[Sample]):
    """Applies a random transform whose randomness comes from a per-item seed.

    Items are requested as ``(index, seed)`` pairs (see :class:`als4gan.train` samplers), so
    augmentation is reproducible and independent of DataLoader workers, and a resumed run sees
    exactly the crops an uninterrupted run would have seen.

    Args:
        dataset: The underlying dataset.
        transform: A random transform ``(sample, generator) -> sample``.
    """

    def __init__(self, dataset: SegmentationDataset, transform: RandomTransform) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> Sample:
        index, seed = key
        generator = torch.Generator().manual_seed(int(seed))
        return self.transform(self.dataset[int(index)], generator)
