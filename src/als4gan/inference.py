"""Whole-image inference: a direct pass for small images, sliding windows for large ones."""

from __future__ import annotations

from collections.abc import Iterator

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
