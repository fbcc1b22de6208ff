"""Whole-image inference: a direct pass for small images, sliding windows for large ones."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows of size ``window`` covering ``length`` with step ``stride``.

    The last window is aligned to the end so that every pixel is covered and no window pads.
    """
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def iter_windows(
    height: int, width: int, window: int, overlap: float
) -> Iterator[tuple[int, int, int, int]]:
    """Yield (top, left, h, w) windows covering a ``height`` x ``width`` image."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must lie in [0, 1), got {overlap}")
    stride = max(1, round(window * (1 - overlap)))
    for top in window_starts(height, window, stride):
        for left in window_starts(width, window, stride):
            yield top, left, min(window, height), min(window, width)


def blend_weights(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """A (h, w) tent-shaped weight, highest in the centre, so overlapping windows blend."""
    ys = torch.linspace(0, 1, h, device=device)
    xs = torch.linspace(0, 1, w, device=device)
    wy = 1 - (2 * ys - 1).abs() * 0.9
    wx = 1 - (2 * xs - 1).abs() * 0.9
    return wy[:, None] * wx[None, :]


@torch.inference_mode()
def predict_probs(
    model: nn.Module,
    image: torch.Tensor,
    num_classes: int,
    window: int | None = None,
    overlap: float = 1 / 3,
    batch_size: int = 4,
) -> torch.Tensor:
    """Class probabilities for a batch of images, by sliding windows when they exceed ``window``.

    Args:
        model: Segmentation network returning logits at input resolution; in eval mode.
        image: (B, C, H, W) images in [0, 1] on the model's device.
        num_classes: Number of output channels.
        window: Window side; ``None`` or an image no larger than it -> one direct pass.
        overlap: Fraction of overlap between neighbouring windows.
        batch_size: Windows per forward pass.

    Returns:
        (B, num_classes, H, W) float32 probabilities at the input resolution.
    """
    height, width = image.shape[-2:]
    if window is None or (height <= window and width <= window):
        return torch.softmax(model(image).float(), dim=1)
    out = torch.zeros(image.shape[0], num_classes, height, width, device=image.device)
    norm = torch.zeros(1, 1, height, width, device=image.device)
    windows = list(iter_windows(height, width, window, overlap))
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        crops = torch.cat([image[:, :, t : t + h, x : x + w] for t, x, h, w in chunk], dim=0)
        probs = torch.softmax(model(crops).float(), dim=1)
        probs = probs.view(len(chunk), image.shape[0], num_classes, *probs.shape[-2:])
        for index, (top, left, h, w) in enumerate(chunk):
            weight = blend_weights(h, w, image.device)
            out[:, :, top : top + h, left : left + w] += probs[index] * weight
            norm[:, :, top : top + h, left : left + w] += weight
    return out / norm


def resize_probs(probs: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize probability maps to ``size`` (H, W)."""
    if tuple(probs.shape[-2:]) == tuple(size):
        return probs
    return F.interpolate(probs, size=size, mode="bilinear", align_corners=False)


def even_window_starts(length: int, window: int, max_stride: int) -> list[int]:
    """Start offsets of evenly spaced windows covering ``length`` with steps <= ``max_stride``.

    Unlike :func:`window_starts` (fixed stride, last window pulled back to the end), the steps
    are spread evenly, so no two neighbouring windows overlap much more than the others. The
    streaming raster predictor relies on this to keep its overlap buffer at about
    ``window - max_stride`` rows whatever the raster size.
    """
    if length <= window:
        return [0]
    if max_stride < 1:
        raise ValueError(f"stride must be at least 1, got {max_stride}")
    count = -(-(length - window) // max_stride) + 1
    span = length - window
    return [round(index * span / (count - 1)) for index in range(count)]


def tent_profile(size: int) -> torch.Tensor:
    """The 1-D factor of :func:`blend_weights` (``blend_weights(h, w)`` is its outer product)."""
    positions = torch.linspace(0, 1, size)
    return 1 - (2 * positions - 1).abs() * 0.9


def crf_available() -> bool:
    """Whether the optional DenseCRF post-processing can run (``pip install als4gan[crf]``)."""
    try:
        import pydensecrf.densecrf  # noqa: F401
    except ImportError:
        return False
    return True


def dense_crf(
    probs: np.ndarray,
    image: np.ndarray,
    iterations: int = 5,
    gaussian_sxy: float = 3.0,
    gaussian_compat: float = 3.0,
    bilateral_sxy: float = 60.0,
    bilateral_srgb: float = 10.0,
    bilateral_compat: float = 5.0,
) -> np.ndarray:
    """Refine class probabilities with a fully connected CRF (Krähenbühl & Koltun, 2011).

    The pairwise terms are the usual DeepLab ones: a smoothness kernel on position and an
    appearance kernel on position and colour.

    Args:
        probs: (C, H, W) class probabilities.
        image: (H, W, 3) ``uint8`` RGB image the probabilities belong to.
        iterations: Mean-field iterations.
        gaussian_sxy: Spatial standard deviation of the smoothness kernel (pixels).
        gaussian_compat: Weight of the smoothness kernel.
        bilateral_sxy: Spatial standard deviation of the appearance kernel (pixels).
        bilateral_srgb: Colour standard deviation of the appearance kernel.
        bilateral_compat: Weight of the appearance kernel.

    Returns:
        (C, H, W) ``float32`` refined probabilities.

    Raises:
        ConfigError: If pydensecrf is not installed (with the command that installs it).
    """
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError:
        from als4gan.errors import ConfigError

        raise ConfigError(
            "DenseCRF post-processing needs the optional package pydensecrf2: "
            "pip install 'als4gan[crf]' (it compiles from source, about a minute)"
        ) from None
    num_classes, height, width = probs.shape
    if image.shape[:2] != (height, width):
        raise ValueError(f"image {image.shape[:2]} and probabilities {probs.shape[1:]} differ")
    crf = dcrf.DenseCRF2D(width, height, num_classes)
    unary = unary_from_softmax(np.clip(probs, 1e-8, 1.0).astype(np.float32))
    crf.setUnaryEnergy(np.ascontiguousarray(unary))
    crf.addPairwiseGaussian(sxy=gaussian_sxy, compat=gaussian_compat)
    rgb = np.ascontiguousarray(image[:, :, :3].astype(np.uint8))
    crf.addPairwiseBilateral(
        sxy=bilateral_sxy, srgb=bilateral_srgb, rgbim=rgb, compat=bilateral_compat
    )
    refined = np.asarray(crf.inference(iterations), dtype=np.float32)
    return refined.reshape(num_classes, height, width)
