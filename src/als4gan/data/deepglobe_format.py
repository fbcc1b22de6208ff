"""DeepGlobe's format: the six classes and their colours, and the file naming and layouts.

Files are ``<id>_sat.*`` images and ``<id>_mask.*`` masks.

Accepted layouts under the root are listed in :data:`LAYOUTS` (the first that holds
``*_sat.*`` files wins; torchgeo's training and test folders are read together); see
:mod:`als4gan.data.deepglobe`. Scanning uses :func:`als4gan.data.layout.scan_files`, as every
reader does.
"""

from __future__ import annotations

from pathlib import Path

from als4gan.data.encoding import ClassTable
from als4gan.data.layout import scan_files
from als4gan.errors import DataError

#: The six DeepGlobe land-cover classes and their mask colours (docs/data.md).
DEEPGLOBE_CLASSES = ClassTable(
    names=("urban", "agriculture", "rangeland", "forest", "water", "barren"),
    colors=(
        (0, 255, 255),
        (255, 255, 0),
        (255, 0, 255),
        (0, 255, 0),
        (0, 0, 255),
        (255, 255, 255),
    ),
)
#: Colour of "unknown" pixels: ignored, and not counted as unmatched.
UNKNOWN_COLOR = (0, 0, 0)
#: Channel threshold applied before colour matching (mask values are not always exactly 0/255).
COLOR_THRESHOLD = 128

IMAGE_SUFFIX = "_sat"
MASK_SUFFIX = "_mask"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp")
#: (images folder, masks folder) candidates relative to the root, in the order they are tried.
LAYOUTS: tuple[tuple[str, ...], ...] = (
    ("images", "masks"),
    ("data/training_data/images", "data/training_data/masks"),
    ("data/test_data/images", "data/test_data/masks"),
    (".", "."),
    ("train", "train"),
)
#: Layouts read together when several are present (torchgeo's training + test folders).
_COMBINED = {LAYOUTS[1], LAYOUTS[2]}

LAYOUT_HELP = (
    "Expected <id>_sat.jpg images with <id>_mask.png masks in ROOT/images + ROOT/masks, "
    "in torchgeo's ROOT/data/training_data/{images,masks}, or side by side in ROOT (or "
    "ROOT/train) as in the original download."
)


def strip_suffix(name: str, suffix: str) -> str | None:
    """The id in file name ``name`` ending in ``suffix`` (``x_sat.jpg`` -> ``x``), or None."""
    stem = Path(name).stem
    return stem[: -len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else None


def _image_id(path: Path) -> str | None:
    return strip_suffix(path.name, IMAGE_SUFFIX)


def _mask_id(path: Path) -> str | None:
    return strip_suffix(path.name, MASK_SUFFIX)


def find_pairs(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Scan ``root`` for DeepGlobe files.

    Returns:
        (id -> image path, id -> mask path); the mask dict lacks ids without a mask.

    Raises:
        DataError: If one id has several image files.
    """
    images: dict[str, Path] = {}
    masks: dict[str, Path] = {}
    used: list[tuple[str, ...]] = []
    for layout in LAYOUTS:
        if used and not (layout in _COMBINED and set(used) <= _COMBINED):
            break
        image_dir, mask_dir = root / layout[0], root / layout[1]
        if not image_dir.is_dir():
            continue
        found, _ = scan_files(image_dir, IMAGE_EXTENSIONS, _image_id, label="DeepGlobe id")
        if not found:
            continue
        twice = next((sample_id for sample_id in found if sample_id in images), None)
        if twice is not None:
            raise DataError(
                f"DeepGlobe id '{twice}' has two images: {images[twice]} and {found[twice]}. "
                "Keep one of them."
            )
        used.append(layout)
        images.update(found)
        if mask_dir.is_dir():
            layout_masks, _ = scan_files(mask_dir, MASK_EXTENSIONS, _mask_id, duplicates="last")
            masks.update((i, path) for i, path in layout_masks.items() if i in found)
    return images, masks


__all__ = [
    "COLOR_THRESHOLD",
    "DEEPGLOBE_CLASSES",
    "IMAGE_EXTENSIONS",
    "IMAGE_SUFFIX",
    "LAYOUTS",
    "LAYOUT_HELP",
    "MASK_EXTENSIONS",
    "MASK_SUFFIX",
    "UNKNOWN_COLOR",
    "find_pairs",
    "strip_suffix",
]
