"""Cutting large images and their masks into a grid of tiles (and resizing masks safely).

Used by ``als4gan prepare deepglobe``: a 2448 px DeepGlobe image gives a 4x4 grid of 612 px
tiles (docs/data.md). When a side is not a multiple of the tile size, ``remainder`` decides:

- ``"overlap"`` (default): the last tile of a row/column is shifted back so that it ends at the
  image border and overlaps its neighbour. Every pixel is kept, every tile is a full, natural
  image (no artificial borders for the discriminator or the classifier); the price is that a
  few pixels appear in two tiles of the same split.
- ``"pad"``: the last tile sticks out and is padded (image with 0, mask with ignore 255).
  Every pixel appears exactly once.
- ``"drop"``: the incomplete border strip is dropped.

A side shorter than the tile gives one tile of that shorter length for ``overlap``, a padded
tile for ``pad`` and no tile for ``drop``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from als4gan.data.encoding import IGNORE_INDEX
from als4gan.errors import ConfigError

#: How incomplete border tiles are handled (see the module docstring).
REMAINDER_MODES = ("overlap", "pad", "drop")


@dataclass(frozen=True)
class Tile:
    """One tile: its window in the source image and the padding it needs.

    Attributes:
        top: First row in the source image.
        left: First column in the source image.
        height: Rows taken from the source image.
        width: Columns taken from the source image.
        pad_bottom: Rows of padding added below.
        pad_right: Columns of padding added on the right.
    """

    top: int
    left: int
    height: int
    width: int
    pad_bottom: int = 0
    pad_right: int = 0

    def tile_id(self, source_id: str) -> str:
        """Id of this tile of ``source_id``: ``<source>_y<top>_x<left>`` (zero-padded)."""
        return f"{source_id}_y{self.top:05d}_x{self.left:05d}"


def tile_starts(length: int, tile_size: int, remainder: str = "overlap") -> list[tuple[int, int]]:
    """(start, taken length) of the tiles along one side.

    Args:
        length: Side length of the image.
        tile_size: Tile side length (> 0).
        remainder: One of :data:`REMAINDER_MODES`.
    """
    if remainder not in REMAINDER_MODES:
        raise ConfigError(
            f"unknown tile remainder mode '{remainder}'. Choose one of: "
            f"{', '.join(REMAINDER_MODES)}"
        )
    if tile_size <= 0:
        raise ConfigError(f"tile size must be positive, got {tile_size}")
    if length <= 0:
        return []
    full = length // tile_size
    starts = [(index * tile_size, tile_size) for index in range(full)]
    rest = length - full * tile_size
    if rest == 0 or remainder == "drop":
        return starts
    if remainder == "pad":
        return [*starts, (full * tile_size, rest)]
    # overlap: shift the last tile back to end at the border (or take the whole short side)
    if full == 0:
        return [(0, length)]
    return [*starts, (length - tile_size, tile_size)]


def tile_grid(height: int, width: int, tile_size: int, remainder: str = "overlap") -> list[Tile]:
    """All tiles of a ``height`` x ``width`` image, row by row.

    Returns:
        The tiles; ``pad_bottom`` / ``pad_right`` are non-zero only with ``remainder="pad"``.
    """
    tiles = []
    for top, rows in tile_starts(height, tile_size, remainder):
        for left, cols in tile_starts(width, tile_size, remainder):
            pad_bottom = tile_size - rows if remainder == "pad" else 0
            pad_right = tile_size - cols if remainder == "pad" else 0
            tiles.append(Tile(top, left, rows, cols, pad_bottom, pad_right))
    return tiles


def tiles_per_side(length: int, tile_size: int, remainder: str = "overlap") -> int:
    """Number of tiles along a side (``ceil`` for overlap/pad, ``floor`` for drop)."""
    if remainder == "drop":
        return length // tile_size
    return math.ceil(length / tile_size) if length > 0 else 0


def crop_tile(array: np.ndarray, tile: Tile, fill: int = 0) -> np.ndarray:
    """The window of ``tile`` from an (H, W) or (H, W, C) array, padded with ``fill``."""
    window = array[tile.top : tile.top + tile.height, tile.left : tile.left + tile.width]
    if tile.pad_bottom or tile.pad_right:
        pad = [(0, tile.pad_bottom), (0, tile.pad_right)] + [(0, 0)] * (array.ndim - 2)
        window = np.pad(window, pad, mode="constant", constant_values=fill)
    return np.ascontiguousarray(window)


def crop_mask_tile(mask: np.ndarray, tile: Tile, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """The window of ``tile`` from a class-index mask; padding is ``ignore_index``."""
    return crop_tile(mask, tile, fill=ignore_index)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(height, width) after scaling by ``scale`` (rounded, at least 1)."""
    return max(1, round(height * scale)), max(1, round(width * scale))


#: Pillow filters for shrinking an image (enlarging is always bilinear); see :func:`resize_image`.
SHRINK_FILTERS: dict[str, Image.Resampling] = {
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
}


def resize_image(
    image: np.ndarray,
    height: int,
    width: int,
    *,
    shrink: str = "box",
    channels_first: bool = False,
) -> np.ndarray:
    """Resize an image with Pillow: bilinear when enlarging, the ``shrink`` filter otherwise.

    Pillow rather than torch: its resampling is single-threaded and exact, where torch's CPU
    interpolation differs in the last bit with the number of threads (a selection would then
    depend on ``--num-workers``).

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` ``uint8`` as read from disk (``channels_first``
            false), or a ``(C, H, W)`` float32 network input (``channels_first``: each band is
            resized as a 32-bit float image, nothing is rounded).
        height: Output height.
        width: Output width.
        shrink: Filter when a side shrinks: ``"box"`` (area average; preparing datasets) or
            ``"bilinear"`` (Pillow's bilinear, antialiased when shrinking; used for the whole
            resize, e.g. the acquisition model's input).
        channels_first: The layout of ``image`` (see above).
    """
    if shrink not in SHRINK_FILTERS:
        raise ConfigError(f"unknown shrink filter '{shrink}'. Choose one of: box, bilinear")
    size = image.shape[1:] if channels_first else image.shape[:2]
    if size == (height, width):
        return image
    shrinking = height < size[0] or width < size[1]
    method = SHRINK_FILTERS[shrink] if shrinking else Image.Resampling.BILINEAR
    if channels_first:
        bands = [
            Image.fromarray(np.ascontiguousarray(band), mode="F").resize((width, height), method)
            for band in image
        ]
        return np.stack([np.asarray(band, dtype=np.float32) for band in bands])
    squeeze = image.ndim == 3 and image.shape[2] == 1
    pil = Image.fromarray(image[:, :, 0] if squeeze else image)
    out = np.asarray(pil.resize((width, height), method))
    return out[:, :, None] if squeeze else out


def resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a class-index mask with nearest neighbour only (never blends labels; docs/data.md).

    Pillow's ``NEAREST`` samples at output pixel centres, so the mask stays aligned with
    :func:`resize_image` (checked by the tests).
    """
    if mask.shape[:2] == (height, width):
        return mask
    pil = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8))
    return np.asarray(pil.resize((width, height), Image.Resampling.NEAREST))


__all__ = [
    "REMAINDER_MODES",
    "Tile",
    "crop_mask_tile",
    "crop_tile",
    "resize_image",
    "resize_mask",
    "scaled_size",
    "tile_grid",
    "tile_starts",
    "tiles_per_side",
]
