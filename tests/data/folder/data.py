"""Write tiny fake ``folder`` datasets: GeoTIFF or PNG images, index or colour masks.

Run as a script to inspect one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

CLASSES = {
    "classes": [
        {"name": "background", "value": 0, "color": [0, 0, 0]},
        {"name": "building", "value": 10, "color": [255, 0, 0]},
        {"name": "road", "value": 20, "color": [128, 128, 128]},
    ],
    "ignore_values": [255],
    "ignore_colors": [[255, 255, 255]],
}
VALUES = np.array([0, 10, 20], dtype=np.uint8)
COLORS = np.array([[0, 0, 0], [255, 0, 0], [128, 128, 128]], dtype=np.uint8)


def write_classes(path: Path, data: dict[str, object] | None = None) -> Path:
    """Write a classes file (YAML, or JSON for a ``.json`` path)."""
    content = CLASSES if data is None else data
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(content))
    else:
        path.write_text(yaml.safe_dump(content))
    return path


def write_geotiff(path: Path, array: np.ndarray) -> None:
    """Write an (H, W, C) array as a georeferenced GeoTIFF."""
    import rasterio
    from rasterio.transform import Affine

    height, width, count = array.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=height,
        width=width,
        count=count,
        dtype=array.dtype,
        crs="EPSG:32633",
        transform=Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0),
    ) as dst:
        dst.write(np.moveaxis(array, -1, 0))


def write_folder(
    root: Path,
    image_format: str = "geotiff",
    mask_format: str = "index",
    num_images: int = 6,
    size: int = 10,
    bands: int = 5,
    with_classes: bool = True,
) -> dict[str, np.ndarray]:
    """Write ``root/images`` + ``root/masks`` (+ ``root/classes.yaml``).

    Args:
        root: Output folder.
        image_format: ``"geotiff"`` (``uint16``, ``bands`` bands) or ``"png"`` (RGB).
        mask_format: ``"index"`` (PNG of the class values 0/10/20, 255 = ignore), ``"color"``
            (RGB PNG, white = ignore) or ``"tiff"`` (index values in a GeoTIFF).
        num_images: Number of pairs.
        size: Side length.
        bands: Bands of GeoTIFF images.
        with_classes: Also write ``root/classes.yaml``.

    Returns:
        id -> expected class indices.
    """
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    expected = {}
    for index in range(num_images):
        sample_id = f"tile_{index:03d}"
        classes = rng.integers(0, 3, size=(size, size)).astype(np.uint8)
        classes[: size // 2] = index % 3
        classes[-1, -1] = 255
        expected[sample_id] = classes
        if image_format == "geotiff":
            image = rng.integers(0, 10000, size=(size, size, bands)).astype(np.uint16)
            write_geotiff(root / "images" / f"{sample_id}.tif", image)
        else:
            image8 = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(image8).save(root / "images" / f"{sample_id}.png")
        valid = classes != 255
        if mask_format == "color":
            rgb = np.full((size, size, 3), 255, dtype=np.uint8)
            rgb[valid] = COLORS[classes[valid]]
            Image.fromarray(rgb).save(root / "masks" / f"{sample_id}.png")
        else:
            stored = np.full((size, size), 255, dtype=np.uint8)
            stored[valid] = VALUES[classes[valid]]
            if mask_format == "tiff":
                write_geotiff(root / "masks" / f"{sample_id}.tif", stored[:, :, None])
            else:
                Image.fromarray(stored).save(root / "masks" / f"{sample_id}.png")
    if with_classes:
        write_classes(root / "classes.yaml")
    return expected


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "folder_fake")
    write_folder(out)
    print(f"wrote a fake folder dataset to {out}")
