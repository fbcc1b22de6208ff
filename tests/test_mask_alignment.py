"""A mask must stay on its image after every resize, crop, pad and flip.

Each test builds a step edge (0 left of column ``edge``, 1 from it on) in both the image and the
mask, transforms them, and checks pixel by pixel that the mask's class is the side of the
midpoint the image is on (pixels exactly at the midpoint may go either way; padding is ignored).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from als4gan.active.data import TrainingImages
from als4gan.data.encoding import IGNORE_INDEX
from als4gan.data.tiling import resize_image as tile_resize_image
from als4gan.data.tiling import resize_mask as tile_resize_mask
from als4gan.data.transforms import TrainAugment, resize_sample
from als4gan.draw.images import resize_nearest

SIZES = [(100, 133), (100, 67), (128, 150), (128, 75), (97, 128), (100, 50), (64, 200)]


def _step(height: int, width: int, edge: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float image and int mask, 1 from index ``edge`` on along ``axis`` (1 = columns)."""
    index = np.arange(width if axis == 1 else height)
    line = (index >= edge).astype(np.float32)
    image = np.broadcast_to(line[None, :] if axis == 1 else line[:, None], (height, width))
    return np.ascontiguousarray(image), np.ascontiguousarray(image).astype(np.int64)


def _assert_aligned(
    image: np.ndarray, mask: np.ndarray, high: float = 1.0, border: int = 0
) -> None:
    """Mask class == side of the midpoint the image is on, wherever that side is clear.

    ``border`` skips that many pixels at each image border: Pillow's antialiased shrink
    renormalises its filter there, which biases the image (not the mask) in the outer pixel.
    """
    assert image.shape == mask.shape
    value = image.astype(np.float64) / high
    known = mask != IGNORE_INDEX
    if border:
        inner = np.zeros_like(known)
        inner[border:-border, border:-border] = True
        known &= inner
    tie = 1e-4 if high == 1.0 else 1.0 / high  # uint8 images round the midpoint
    above = known & (value > 0.5 + tie)
    below = known & (value < 0.5 - tie)
    assert (mask[above] == 1).all(), np.argwhere(above & (mask != 1))[:5]
    assert (mask[below] == 0).all(), np.argwhere(below & (mask != 0))[:5]
    assert above.any() or below.any()


def _edge_column(row: np.ndarray) -> int:
    return int(np.argmax(row >= 0.5))


def test_legacy_nearest_is_one_column_off_and_nearest_exact_is_not() -> None:
    image, mask = _step(4, 100, 1, axis=1)
    bilinear = F.interpolate(torch.from_numpy(image)[None, None], size=(4, 133), mode="bilinear")
    legacy = F.interpolate(torch.from_numpy(mask)[None, None].float(), size=(4, 133))
    edge = _edge_column(bilinear[0, 0, 0].numpy())
    assert _edge_column(legacy[0, 0, 0].numpy()) == edge + 1  # the defect this guards against
    out = resize_sample(
        {"image": torch.from_numpy(image)[None], "mask": torch.from_numpy(mask)}, 4, 133
    )
    assert _edge_column(out["mask"][0].numpy()) == edge == _edge_column(out["image"][0, 0].numpy())


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize(("source", "target"), SIZES)
def test_resize_sample_keeps_mask_on_image(source: int, target: int, axis: int) -> None:
    for edge in range(1, source, 3):
        image, mask = _step(source, source, edge, axis)
        sample = {"image": torch.from_numpy(image)[None], "mask": torch.from_numpy(mask)}
        out = resize_sample(sample, target, target)
        _assert_aligned(out["image"][0].numpy(), out["mask"].numpy())


@pytest.mark.parametrize("axis", [0, 1])
def test_train_augment_keeps_mask_on_image(axis: int) -> None:
    augment = TrainAugment(crop_size=48, scale_range=(0.5, 1.5), mirror=True)
    for seed in range(40):
        edge = 5 + seed * 7 % 50
        image, mask = _step(60, 60, edge, axis)
        sample = {"image": torch.from_numpy(image)[None].repeat(3, 1, 1)}
        sample["mask"] = torch.from_numpy(mask)
        out = augment(sample, torch.Generator().manual_seed(seed))
        for channel in range(3):
            _assert_aligned(out["image"][channel].numpy(), out["mask"].numpy())


@pytest.mark.parametrize(("source", "target"), SIZES)
def test_pillow_resizes_keep_mask_on_image(source: int, target: int) -> None:
    """Pillow's NEAREST samples pixel centres, like the bilinear/box image resizes."""
    for edge in range(1, source, 3):
        image, mask = _step(source, source, edge, axis=1)
        pooled = tile_resize_image(
            image[None], target, target, shrink="bilinear", channels_first=True
        )[0]
        border = 1 if target < source else 0
        pooled_mask = tile_resize_mask(mask.astype(np.uint8), target, target)
        _assert_aligned(pooled, pooled_mask, border=border)
        tiled = tile_resize_image((image * 255).astype(np.uint8)[:, :, None], target, target)
        tiled_mask = tile_resize_mask(mask.astype(np.uint8), target, target)
        _assert_aligned(tiled[:, :, 0], tiled_mask, high=255.0)
        _assert_aligned(pooled, resize_nearest(mask, target, target), border=border)


class _Subset:
    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.samples[index]


class _Dataset:
    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.samples = samples

    def subset(self, ids: list[str]) -> _Subset:
        return _Subset(self.samples)


def test_acquisition_training_images_keep_mask_on_image() -> None:
    samples = []
    for edge in (7, 20, 33, 41):
        image, mask = _step(50, 50, edge, axis=1)
        samples.append(
            {"image": torch.from_numpy(image)[None], "mask": torch.from_numpy(mask), "label": 0}
        )
    data = TrainingImages(
        _Dataset(samples),  # type: ignore[arg-type]
        ["a", "b", "c", "d"],
        image_size=37,
        scale_range=(0.5, 1.5),
        mirror=True,
        with_mask=True,
    )
    for seed in range(40):
        item = data[(seed % 4, seed)]
        _assert_aligned(item["image"][0].numpy(), item["mask"].numpy(), border=1)
