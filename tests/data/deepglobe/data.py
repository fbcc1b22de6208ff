"""Write a tiny fake DeepGlobe Land Cover folder (run as a script to inspect one).

Masks use the real colour table with realistic defects: channel values that are not exactly
0/255 (must be thresholded at 128), black "unknown" pixels and stray colours matching no class.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

#: DeepGlobe colours, class index order.
COLORS = np.array(
    [[0, 255, 255], [255, 255, 0], [255, 0, 255], [0, 255, 0], [0, 0, 255], [255, 255, 255]],
    dtype=np.uint8,
)
LAYOUTS = ("subfolders", "flat", "torchgeo")


def make_pair(
    seed: int, height: int, width: int, stray: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, colour mask, expected class indices) with noise, unknown and ``stray`` pixels."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    classes = rng.integers(0, 6, size=(height, width)).astype(np.uint8)
    classes[: height // 2, : width // 2] = seed % 6  # a dominant class that varies by seed
    expected = classes.copy()
    mask = COLORS[classes].astype(np.int16)
    # not exactly 0/255: e.g. 250 and 20 still threshold to 255 and 0
    jitter = rng.integers(0, 40, size=mask.shape)
    mask = np.where(mask == 255, mask - jitter, mask + jitter)
    mask[0, 0] = (0, 0, 0)  # unknown
    expected[0, 0] = 255
    flat = rng.permutation(height * width)[1 : 1 + stray]
    for index in flat:
        row, col = divmod(int(index), width)
        if (row, col) != (0, 0):
            mask[row, col] = (255, 0, 0)  # pure red: matches no class
            expected[row, col] = 255
    return image, mask.clip(0, 255).astype(np.uint8), expected


def write_deepglobe(
    root: Path,
    layout: str = "subfolders",
    num_images: int = 6,
    size: tuple[int, int] = (16, 16),
    stray: tuple[int, ...] = (),
) -> dict[str, np.ndarray]:
    """Write ``num_images`` pairs in ``layout``; ``stray[i]`` red pixels in mask i.

    Returns:
        id -> expected decoded mask.
    """
    if layout == "subfolders":
        image_dir, mask_dir = root / "images", root / "masks"
    elif layout == "flat":
        image_dir = mask_dir = root
    elif layout == "torchgeo":
        image_dir = root / "data" / "training_data" / "images"
        mask_dir = root / "data" / "training_data" / "masks"
    else:
        raise ValueError(layout)
    image_dir.mkdir(parents=True, exist_ok=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    expected = {}
    for index in range(num_images):
        sample_id = f"{100 + index}"
        count = stray[index] if index < len(stray) else 0
        image, mask, decoded = make_pair(index, size[0], size[1], count)
        Image.fromarray(image).save(image_dir / f"{sample_id}_sat.jpg", quality=95)
        Image.fromarray(mask).save(mask_dir / f"{sample_id}_mask.png")
        expected[sample_id] = decoded
    return expected


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "deepglobe_fake")
    write_deepglobe(out, stray=(3,))
    print(f"wrote a fake DeepGlobe folder to {out}")
