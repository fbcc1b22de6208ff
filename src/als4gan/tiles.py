"""The streaming tile engine of ``als4gan predict``: overlapping windows, tent blending, argmax.

:func:`predict_tiles` walks a raster one row-band of windows at a time and, inside a band, one
window at a time from left to right. It keeps only the running sum of the current window's
columns, the rows the next band will overlap and the finished rows of the band, so its memory
grows with the raster *width* times the window overlap, never with its area. Inputs are
:class:`Source` objects and finished rows go to a :class:`Sink` (see :mod:`als4gan.rasters`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from als4gan.data.encoding import IGNORE_INDEX
from als4gan.errors import ConfigError
from als4gan.inference import even_window_starts, tent_profile

Forward = Callable[[np.ndarray], np.ndarray]


class Source(Protocol):
    """An input image readable by windows."""

    path: Path
    height: int
    width: int
    streamed: bool

    def read(self, top: int, left: int, height: int, width: int) -> np.ndarray:
        """(bands, height, width) float32 pixels scaled like training images."""

    def valid(self, top: int, height: int) -> np.ndarray | None:
        """(height, width) bool: pixels with data (``None`` when every pixel has data)."""


@dataclass
class TileGrid:
    """Window positions covering a raster."""

    tops: list[int]
    lefts: list[int]
    tile_height: int
    tile_width: int

    @classmethod
    def build(cls, height: int, width: int, window: int, overlap: float) -> TileGrid:
        """Evenly spaced windows of side ``window`` with at least ``overlap`` overlap."""
        if window < 1:
            raise ConfigError(f"--window must be at least 1 pixel, got {window}")
        if not 0 <= overlap < 1:
            raise ConfigError(f"--overlap must lie in [0, 1), got {overlap}")
        stride = max(1, round(window * (1 - overlap)))
        return cls(
            even_window_starts(height, window, stride),
            even_window_starts(width, window, stride),
            min(window, height),
            min(window, width),
        )

    @property
    def count(self) -> int:
        """Number of tiles."""
        return len(self.tops) * len(self.lefts)


class Sink(Protocol):
    """Receives finished rows of the prediction, top to bottom."""

    def write_rows(
        self, top: int, classes: np.ndarray, confidence: np.ndarray, source: Source
    ) -> None:
        """Rows ``top..top+len(classes)`` (class indices ``uint8``, confidence float32)."""


def _coverage(length: int, starts: Sequence[int], size: int) -> np.ndarray:
    """Sum of the 1-D tent weights of all windows at every position (for normalisation)."""
    profile = tent_profile(size).numpy()
    total = np.zeros(length, dtype=np.float32)
    for start in starts:
        total[start : start + size] += profile
    return total


def predict_tiles(
    source: Source,
    sink: Sink,
    forward: Forward,
    num_classes: int,
    grid: TileGrid,
    batch_size: int = 4,
    on_tiles: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Predict a whole raster tile by tile with blended overlaps, in bounded memory.

    Args:
        source: The input.
        sink: Receives finished rows, in order.
        forward: (B, bands, h, w) float32 -> (B, classes, h, w) float32 probabilities.
        num_classes: Number of classes.
        grid: Window positions.
        batch_size: Tiles per forward call.
        on_tiles: Called with the number of tiles just finished (progress).

    Returns:
        Pixel count per class (no-data excluded).
    """
    height, width = source.height, source.width
    tile_h, tile_w = grid.tile_height, grid.tile_width
    norm_y = _coverage(height, grid.tops, tile_h)
    norm_x = _coverage(width, grid.lefts, tile_w)
    weight = np.outer(tent_profile(tile_h).numpy(), tent_profile(tile_w).numpy())
    counts = np.zeros(num_classes, dtype=np.int64)
    # Rows shared with the next band, summed over every band so far. One buffer, updated in
    # place column segment by column segment (each segment is read before it is rewritten).
    bottoms = [top + tile_h for top in grid.tops]
    shared = [
        bottom - after for bottom, after in zip(bottoms, [*grid.tops[1:], height], strict=True)
    ]
    carry = np.zeros((num_classes, max(shared), width), dtype=np.float32)
    band = _Band(source, forward, grid, weight, carry, norm_x)
    carry_rows = 0
    for band_index, top in enumerate(grid.tops):
        next_top = grid.tops[band_index + 1] if band_index + 1 < len(grid.tops) else height
        strip_classes, strip_confidence = band.run(
            top, next_top, norm_y[top:next_top], carry_rows, batch_size, on_tiles
        )
        carry_rows = top + tile_h - next_top
        valid = source.valid(top, next_top - top)
        if valid is not None:
            strip_classes[~valid] = IGNORE_INDEX
            strip_confidence[~valid] = 0.0
        counts += np.bincount(strip_classes.ravel(), minlength=256)[:num_classes]
        sink.write_rows(top, strip_classes, strip_confidence, source)
    return counts


@dataclass
class _Band:
    """One row-band of windows of :func:`predict_tiles`, walked from left to right."""

    source: Source
    forward: Forward
    grid: TileGrid
    weight: np.ndarray
    carry: np.ndarray
    norm_x: np.ndarray

    def run(
        self,
        top: int,
        next_top: int,
        norm_y: np.ndarray,
        carry_rows: int,
        batch_size: int,
        on_tiles: Callable[[int], None] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Classes and confidence of the rows ``top..next_top`` (the band's own rows)."""
        lefts, width = self.grid.lefts, self.source.width
        tile_h, tile_w = self.grid.tile_height, self.grid.tile_width
        final_rows = next_top - top
        strip_classes = np.empty((final_rows, width), dtype=np.uint8)
        strip_confidence = np.empty((final_rows, width), dtype=np.float32)
        carry = self.carry
        column = np.zeros((carry.shape[0], tile_h, tile_w), dtype=np.float32)
        for chunk_start in range(0, len(lefts), batch_size):
            chunk = range(chunk_start, min(chunk_start + batch_size, len(lefts)))
            tiles = np.stack([self.source.read(top, lefts[j], tile_h, tile_w) for j in chunk])
            probs = self.forward(tiles)
            for offset, j in enumerate(chunk):
                left = lefts[j]
                column += probs[offset] * self.weight
                end = lefts[j + 1] if j + 1 < len(lefts) else width
                segment = column[:, :, : end - left]
                if carry_rows:
                    segment[:, :carry_rows] += carry[:, :carry_rows, left:end]
                done = segment[:, :final_rows] / (norm_y[:, None] * self.norm_x[None, left:end])
                strip_classes[:, left:end] = done.argmax(axis=0)
                strip_confidence[:, left:end] = done.max(axis=0)
                carry[:, : tile_h - final_rows, left:end] = segment[:, final_rows:]
                if j + 1 < len(lefts):
                    shift = lefts[j + 1] - left
                    shifted = np.zeros_like(column)
                    shifted[:, :, : tile_w - shift] = column[:, :, shift:]
                    column = shifted
            if on_tiles is not None:
                on_tiles(len(chunk))
        return strip_classes, strip_confidence


class MemorySink:
    """Keeps the whole prediction in memory (ordinary image inputs, which are in memory too)."""

    def __init__(self, height: int, width: int) -> None:
        self.classes = np.full((height, width), IGNORE_INDEX, dtype=np.uint8)
        self.confidence = np.zeros((height, width), dtype=np.float32)

    def write_rows(
        self, top: int, classes: np.ndarray, confidence: np.ndarray, source: Source
    ) -> None:
        """See :class:`Sink`."""
        self.classes[top : top + classes.shape[0]] = classes
        self.confidence[top : top + classes.shape[0]] = confidence
