"""UniMatch's strong augmentation and CutMix on batches of images in [0, 1].

The weak view is the usual training crop (random scale, crop, mirror; see
:mod:`als4gan.data.transforms`).
A strong view of it keeps the geometry and changes the pixels: colour jitter (brightness, contrast,
saturation, hue, in random order; probability 0.8), random grayscale (0.2) and Gaussian blur (0.5).
CutMix then pastes a random box of another unlabelled image's strong view into it (0.5).

Every random draw comes from the ``torch.Generator`` passed in, on the CPU; the trainer seeds it
from the run seed, the step and the micro-batch (see :mod:`als4gan.train.methods.unimatch`), so a
resumed run draws exactly what an uninterrupted one would have drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Luminance weights of R, G, B (ITU-R 601), for 3-band images.
LUMA = (0.299, 0.587, 0.114)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(generator: torch.Generator, prob: float) -> bool:
    return bool(torch.rand((), generator=generator) < prob)


def grayscale(image: torch.Tensor) -> torch.Tensor:
    """(1, H, W) intensity of a (C, H, W) image: luminance for 3 bands, the band mean otherwise."""
    if image.shape[0] == 3:
        weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device)
        return (image * weights[:, None, None]).sum(dim=0, keepdim=True)
    return image.mean(dim=0, keepdim=True)


def adjust_brightness(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Scale intensities by ``factor`` (clamped to [0, 1])."""
    return (image * factor).clamp(0, 1)


def adjust_contrast(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the mean intensity: ``factor`` 0 is flat grey, 1 the image itself."""
    mean = grayscale(image).mean()
    return (factor * image + (1 - factor) * mean).clamp(0, 1)


def adjust_saturation(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with the grayscale image: ``factor`` 0 is grey, 1 the image itself."""
    return (factor * image + (1 - factor) * grayscale(image)).clamp(0, 1)


def adjust_hue(image: torch.Tensor, shift: float) -> torch.Tensor:
    """Rotate the hue of a 3-band image by ``shift`` turns (other band counts are unchanged)."""
    if image.shape[0] != 3 or shift == 0:
        return image
    red, green, blue = image.unbind(0)
    high, _ = image.max(dim=0)
    low, _ = image.min(dim=0)
    delta = high - low
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        high == red,
        ((green - blue) / safe) % 6,
        torch.where(high == green, (blue - red) / safe + 2, (red - green) / safe + 4),
    )
    hue = torch.where(delta > 0, hue / 6, torch.zeros_like(hue))
    hue = (hue + shift) % 1.0
    saturation = torch.where(high > 0, delta / torch.where(high > 0, high, 1), 0)
    # HSV back to RGB: channel n is V - V S max(0, min(k, 4 - k, 1)), k = (n + 6 H) mod 6.
    out = []
    for n in (5.0, 3.0, 1.0):
        k = (n + hue * 6) % 6
        weight = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
        out.append(high - high * saturation * weight)
    return torch.stack(out).clamp(0, 1)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (C, H, W) image (radius ceil(3 sigma), edges repeated)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[0]
    x = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return x[0]


@dataclass
class StrongAugment:
    """Colour jitter, random grayscale and blur of each image (UniMatch's strong view).

    Args:
        jitter: Brightness, contrast, saturation strengths (factor drawn from [1 - s, 1 + s])
            and hue strength (shift drawn from [-h, h] turns).
        jitter_prob: Probability of colour jitter.
        grayscale_prob: Probability of grayscale.
        blur_prob: Probability of Gaussian blur.
        blur_sigma: Range of the blur's standard deviation, in pixels.
    """

    jitter: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 0.25)
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.2
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)

    def one(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A strong view of one (C, H, W) image."""
        if _chance(generator, self.jitter_prob):
            brightness, contrast, saturation, hue = self.jitter
            order = torch.randperm(4, generator=generator).tolist()
            factors = [
                _uniform(generator, max(0.0, 1 - brightness), 1 + brightness),
                _uniform(generator, max(0.0, 1 - contrast), 1 + contrast),
                _uniform(generator, max(0.0, 1 - saturation), 1 + saturation),
                _uniform(generator, -hue, hue),
            ]
            operations = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
            for index in order:
                image = operations[index](image, factors[index])
        if _chance(generator, self.grayscale_prob):
            image = grayscale(image).expand_as(image).contiguous()
        if _chance(generator, self.blur_prob):
            image = gaussian_blur(image, _uniform(generator, *self.blur_sigma))
        return image

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Strong views of a (B, C, H, W) batch (each image drawn independently)."""
        out = torch.stack([self.one(image.float(), generator) for image in images])
        return out.to(images.dtype).contiguous(memory_format=torch.contiguous_format)


def cutmix_box(
    height: int,
    width: int,
    generator: torch.Generator,
    prob: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
    tries: int = 100,
) -> torch.Tensor:
    """A random (H, W) boolean box for CutMix, or all False (with probability ``1 - prob``).

    The box covers a share of the image drawn from ``area``, with aspect ratio (height / width)
    drawn from ``ratio``; a box that does not fit is drawn again (``tries`` times at most, then
    no box).
    """
    box = torch.zeros(height, width, dtype=torch.bool)
    if not _chance(generator, prob):
        return box
    size = _uniform(generator, *area) * height * width
    for _ in range(tries):
        aspect = _uniform(generator, *ratio)
        box_w = int(math.sqrt(size / aspect))
        box_h = int(math.sqrt(size * aspect))
        left = int(torch.randint(0, width, (), generator=generator))
        top = int(torch.randint(0, height, (), generator=generator))
        if left + box_w <= width and top + box_h <= height:
            box[top : top + box_h, left : left + box_w] = True
            return box
    return box


def cutmix(target: torch.Tensor, source: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """``target`` with ``source`` pasted where ``box`` is True (image, label or confidence maps).

    Args:
        target: (B, C, H, W) or (B, H, W).
        source: Same shape as ``target``.
        box: (B, H, W) boolean.
    """
    mask = box[:, None] if target.ndim == 4 else box
    return torch.where(mask, source, target)
