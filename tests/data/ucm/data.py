"""Write a tiny fake UC Merced + DLRSD folder (run as a script to inspect one).

Images are RGB TIFFs ``<scene><NN>.tif``; labels are palette PNGs holding DLRSD values 1..17.
One image can be a few pixels smaller than its label, like the 247-256 px UC Merced images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

SCENES = ("agricultural", "beach", "forest", "harbor")
LAYOUTS = ("nested", "flat", "archives")


def _palette() -> list[int]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=256 * 3).tolist()


def write_label(path: Path, values: np.ndarray) -> None:
    """Save DLRSD-style stored values as a palette PNG."""
    image = Image.fromarray(values.astype(np.uint8))
    image.putpalette(_palette())
    image.save(path)


def write_ucm(
    root: Path,
    layout: str = "nested",
    scenes: tuple[str, ...] = SCENES,
    per_scene: int = 4,
    size: int = 12,
    smaller: str | None = None,
) -> dict[str, np.ndarray]:
    """Write ``per_scene`` images per scene; ``smaller`` names an id whose image is 1 px short.

    Layouts: ``nested`` = ``Images/<scene>/<id>.tif`` + ``Labels/<scene>/<id>.png``;
    ``flat`` = ``UCMerced_Images/<id>.tif`` + ``UCMerced_Labels/<id>.png``; ``archives`` =
    ``UCMerced_LandUse/Images/<scene>/`` + ``DLRSD/Images/<scene>/`` (the two downloads).

    Returns:
        id -> expected class indices (stored value - 1).
    """
    if layout == "nested":
        image_base, label_base, nested = root / "Images", root / "Labels", True
    elif layout == "flat":
        image_base, label_base, nested = root / "UCMerced_Images", root / "UCMerced_Labels", False
    elif layout == "archives":
        image_base = root / "UCMerced_LandUse" / "Images"
        label_base, nested = root / "DLRSD" / "Images", True
    else:
        raise ValueError(layout)
    expected = {}
    rng = np.random.default_rng(7)
    for scene in scenes:
        image_dir = image_base / scene if nested else image_base
        label_dir = label_base / scene if nested else label_base
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for number in range(per_scene):
            sample_id = f"{scene}{number:02d}"
            values = rng.integers(1, 18, size=(size, size)).astype(np.uint8)
            height = size - 1 if sample_id == smaller else size
            image = rng.integers(0, 256, size=(height, size, 3), dtype=np.uint8)
            Image.fromarray(image).save(image_dir / f"{sample_id}.tif")
            write_label(label_dir / f"{sample_id}.png", values)
            expected[sample_id] = values - 1
    return expected


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "ucm_fake")
    write_ucm(out, smaller="beach01")
    print(f"wrote a fake UC Merced + DLRSD folder to {out}")
