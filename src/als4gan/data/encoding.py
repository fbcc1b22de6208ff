"""Label encodings: class tables and decoding of colour / index masks to class indices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The ignore label used everywhere (losses, metrics, masks on disk).
IGNORE_INDEX = 255

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ClassTable:
    """Names and display colours of the pixel classes of a dataset.

    Attributes:
        names: Class names, index order.
        colors: One RGB colour per class (for colour masks on disk and for display).
        ignore_index: Mask value meaning "no label".
    """

    names: tuple[str, ...]
    colors: tuple[RGB, ...]
    ignore_index: int = IGNORE_INDEX
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise ValueError(
                f"class table has {len(self.names)} names but {len(self.colors)} colours"
            )

    @property
    def num_classes(self) -> int:
        """Number of real classes (ignore excluded)."""
        return len(self.names)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for checkpoints, JSON and YAML."""
        return {
            "names": list(self.names),
            "colors": [list(color) for color in self.colors],
            "ignore_index": self.ignore_index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassTable:
        """Inverse of :meth:`to_dict`."""
        return cls(
            names=tuple(str(name) for name in data["names"]),
            colors=tuple((int(color[0]), int(color[1]), int(color[2])) for color in data["colors"]),
            ignore_index=int(data.get("ignore_index", IGNORE_INDEX)),
        )

    def palette(self) -> np.ndarray:
        """(256, 3) ``uint8`` lookup table: class index -> colour, ignore -> black."""
        lut = np.zeros((256, 3), dtype=np.uint8)
        for index, color in enumerate(self.colors):
            lut[index] = color
        return lut

    def colorize(self, mask: np.ndarray) -> np.ndarray:
        """(H, W) class indices -> (H, W, 3) colours (ignore and unknown values -> black)."""
        colored: np.ndarray = self.palette()[np.clip(mask, 0, 255).astype(np.uint8)]
        return colored


def decode_binary_color_mask(
    rgb: np.ndarray,
    colors: Sequence[RGB],
    threshold: int = 128,
    ignore_index: int = IGNORE_INDEX,
    ignore_colors: Sequence[RGB] = (),
) -> tuple[np.ndarray, int]:
    """Decode a colour mask whose colours are 0/255 per channel (DeepGlobe), after thresholding.

    Each channel is binarised at ``threshold`` first (JPEG-like noise in real masks). Pixels whose
    binarised colour is not in ``colors`` become ``ignore_index``.

    Args:
        rgb: (H, W, 3) ``uint8`` mask, RGB order.
        colors: Class colours (each channel 0 or 255).
        threshold: Channel values >= threshold count as 255.
        ignore_index: Value for unmatched pixels.
        ignore_colors: Colours that mean "no label" (e.g. DeepGlobe's black "unknown"): they
            become ``ignore_index`` too but are not counted as unmatched.

    Returns:
        (H, W) ``uint8`` class indices and the number of unmatched pixels (binarised colour
        neither a class colour nor an ignore colour).
    """
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an (H, W, 3) colour mask, got shape {rgb.shape}")
    code = (rgb[:, :, 0] >= threshold).astype(np.uint8) << 2
    code |= (rgb[:, :, 1] >= threshold).astype(np.uint8) << 1
    code |= (rgb[:, :, 2] >= threshold).astype(np.uint8)

    def key(color: RGB) -> int:
        r, g, b = color
        return (int(r >= threshold) << 2) | (int(g >= threshold) << 1) | int(b >= threshold)

    lut = np.full(8, ignore_index, dtype=np.uint8)
    counted = np.ones(8, dtype=bool)
    for index, color in enumerate(colors):
        lut[key(color)] = index
        counted[key(color)] = False
    for color in ignore_colors:
        counted[key(color)] = False
    mask = lut[code]
    unmatched = int(np.bincount(code.ravel(), minlength=8)[counted].sum())
    return mask, unmatched


def decode_color_mask(
    rgb: np.ndarray,
    colors: Sequence[RGB],
    ignore_colors: Sequence[RGB] = (),
    ignore_index: int = IGNORE_INDEX,
) -> tuple[np.ndarray, int]:
    """Decode a colour mask by exact colour match (any colours, e.g. a folder dataset).

    Args:
        rgb: (H, W, 3) mask, RGB order.
        colors: Class colours.
        ignore_colors: Colours that mean "no label" (not counted as unmatched).
        ignore_index: Value for ignore and unmatched pixels.

    Returns:
        (H, W) ``uint8`` class indices and the number of pixels matching no listed colour.
    """
    rgb = rgb[:, :, :3].astype(np.int64)
    packed = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
    keys = np.array([(r << 16) | (g << 8) | b for r, g, b in colors], dtype=np.int64)
    ignore_keys = np.array([(r << 16) | (g << 8) | b for r, g, b in ignore_colors], dtype=np.int64)
    mask = np.full(packed.shape, ignore_index, dtype=np.uint8)
    unique, inverse = np.unique(packed, return_inverse=True)
    values = np.full(unique.shape, ignore_index, dtype=np.uint8)
    unmatched_values = np.ones(unique.shape, dtype=bool)
    for index, key in enumerate(keys):
        hit = unique == key
        values[hit] = index
        unmatched_values[hit] = False
    unmatched_values[np.isin(unique, ignore_keys)] = False
    mask = values[inverse].reshape(packed.shape)
    counts = np.bincount(inverse.ravel(), minlength=unique.size)
    return mask, int(counts[unmatched_values].sum())


def decode_index_mask(
    mask: np.ndarray,
    num_classes: int,
    value_map: Mapping[int, int] | None = None,
    ignore_values: Sequence[int] = (IGNORE_INDEX,),
    ignore_index: int = IGNORE_INDEX,
) -> tuple[np.ndarray, np.ndarray]:
    """Map stored index values to class indices.

    Args:
        mask: (H, W) integer mask as stored.
        num_classes: Number of classes.
        value_map: Stored value -> class index (identity for ``0..num_classes-1`` when None).
        ignore_values: Stored values meaning "no label".
        ignore_index: Output value for ignore.

    Returns:
        (H, W) ``uint8`` class indices and the sorted array of stored values that are neither a
        class nor ignore (empty when the mask is valid). Such values are set to ignore.
    """
    if value_map is None:
        value_map = {value: value for value in range(num_classes)}
    lut_size = int(max(int(mask.max(initial=0)) + 1, 256))
    lut = np.full(lut_size, -1, dtype=np.int64)
    for stored, index in value_map.items():
        if 0 <= stored < lut_size:
            lut[stored] = index
    for stored in ignore_values:
        if 0 <= stored < lut_size:
            lut[stored] = ignore_index
    if mask.min(initial=0) < 0:
        raise ValueError("mask holds negative values")
    decoded = lut[mask.astype(np.int64)]
    bad = np.unique(mask[decoded < 0])
    decoded[decoded < 0] = ignore_index
    return decoded.astype(np.uint8), bad


def dominant_class(mask: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX) -> int:
    """Most frequent class of a mask, ignore excluded; ties -> lowest index; -1 if all ignore."""
    valid = mask[mask != ignore_index]
    if valid.size == 0:
        return -1
    counts = np.bincount(valid.ravel().astype(np.int64), minlength=num_classes)
    return int(np.argmax(counts))


def check_same_classes(
    expected: ClassTable | Mapping[str, Any],
    actual: ClassTable | Mapping[str, Any],
    expected_from: str,
    actual_from: str,
) -> None:
    """Raise a clear error when two class tables differ (e.g. checkpoint vs dataset).

    Args:
        expected: Class table (or its ``to_dict()`` form, as stored in checkpoints).
        actual: The table it must match.
        expected_from: Where ``expected`` comes from, e.g. ``"checkpoint runs/a/best.pt"``.
        actual_from: Where ``actual`` comes from, e.g. ``"dataset 'ucm' at data/ucm"``.

    Raises:
        DataError: If the class count or the class names (in order) differ.
    """
    from als4gan.errors import DataError

    def names_of(table: ClassTable | Mapping[str, Any]) -> list[str]:
        if isinstance(table, ClassTable):
            return list(table.names)
        return [str(name) for name in table["names"]]

    want, have = names_of(expected), names_of(actual)
    if want == have:
        return
    if len(want) != len(have):
        problem = f"has {len(want)} classes ({', '.join(want)}) but {actual_from} has {len(have)}"
    else:
        problem = f"has the classes ({', '.join(want)}) but {actual_from} has other names/order"
    raise DataError(
        f"{expected_from} {problem} ({', '.join(have)}). Use one made for this dataset, or "
        "pass the --dataset / --classes-file it was made with (wrong class count or order)."
    )
