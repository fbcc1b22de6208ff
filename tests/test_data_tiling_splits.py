from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from als4gan.data.encoding import ClassTable, check_same_classes
from als4gan.data.splits import random_split, split_sizes, stratified_split, write_splits
from als4gan.data.tiling import (
    Tile,
    crop_mask_tile,
    crop_tile,
    resize_mask,
    tile_grid,
    tile_starts,
    tiles_per_side,
)
from als4gan.errors import ConfigError, DataError
from als4gan.io import read_ids


def test_deepglobe_grid_is_4x4_of_612() -> None:
    grid = tile_grid(2448, 2448, 612)
    assert len(grid) == 16
    assert {(t.top, t.left) for t in grid} == {
        (r * 612, c * 612) for r in range(4) for c in range(4)
    }
    assert all((t.height, t.width, t.pad_bottom, t.pad_right) == (612, 612, 0, 0) for t in grid)


@pytest.mark.parametrize(
    ("remainder", "starts"),
    [
        ("overlap", [(0, 8), (8, 8), (12, 8)]),
        ("pad", [(0, 8), (8, 8), (16, 4)]),
        ("drop", [(0, 8), (8, 8)]),
    ],
)
def test_remainder_modes(remainder: str, starts: list[tuple[int, int]]) -> None:
    assert tile_starts(20, 8, remainder) == starts
    assert tiles_per_side(20, 8, remainder) == len(starts)


def test_short_side_and_padding() -> None:
    assert tile_starts(5, 8, "overlap") == [(0, 5)]
    assert tile_starts(5, 8, "drop") == []
    (tile,) = tile_grid(5, 5, 8, "pad")
    assert tile == Tile(0, 0, 5, 5, pad_bottom=3, pad_right=3)
    mask = np.arange(25, dtype=np.uint8).reshape(5, 5)
    padded = crop_mask_tile(mask, tile)
    assert padded.shape == (8, 8) and (padded[5:] == 255).all() and (padded[:, 5:] == 255).all()
    image = np.ones((5, 5, 3), np.uint8)
    assert crop_tile(image, tile)[7, 7].tolist() == [0, 0, 0]
    with pytest.raises(ConfigError, match="remainder"):
        tile_starts(10, 4, "wrap")


def test_every_pixel_is_covered_once_with_pad_and_at_least_once_with_overlap() -> None:
    for remainder, exact in (("pad", True), ("overlap", False)):
        cover = np.zeros((23, 17), int)
        for tile in tile_grid(23, 17, 6, remainder):
            cover[tile.top : tile.top + tile.height, tile.left : tile.left + tile.width] += 1
        assert (cover == 1).all() if exact else (cover >= 1).all()


def test_mask_resize_never_blends() -> None:
    mask = np.array([[0, 5], [255, 3]], np.uint8)
    big = resize_mask(mask, 7, 9)
    assert set(np.unique(big).tolist()) == {0, 3, 5, 255}


def test_split_sizes_and_determinism() -> None:
    assert split_sizes(13, 0.15, 0.15) == (9, 2, 2)
    assert split_sizes(3, 0.01, 0.01) == (1, 1, 1)  # tiny fractions still give one image each
    assert split_sizes(5, 0.0, 0.2) == (4, 0, 1)
    with pytest.raises(DataError, match="empty pool"):
        split_sizes(0, 0.1, 0.1)
    with pytest.raises(ConfigError, match="must be below 1"):
        split_sizes(10, 0.5, 0.5)
    ids = [f"img{i:02d}" for i in range(40)]
    first = random_split(ids, 0.2, 0.1, seed=4)
    assert first == random_split(list(reversed(ids)), 0.2, 0.1, seed=4)  # order-independent
    assert first != random_split(ids, 0.2, 0.1, seed=5)
    assert sorted(i for ids_ in first.values() for i in ids_) == ids
    assert [len(first[k]) for k in ("train", "val", "test")] == [28, 8, 4]


def test_stratified_split_keeps_label_shares() -> None:
    ids = [f"s{i:03d}" for i in range(200)]
    labels = [i % 4 if i < 160 else 4 for i in range(200)]  # 4 x 40 + one label of 40
    splits = stratified_split(ids, labels, 0.15, 0.15, seed=0)
    label_of = dict(zip(ids, labels, strict=True))
    for name in ("val", "test"):
        assert len(splits[name]) == 30
        assert sorted(Counter(label_of[i] for i in splits[name]).values()) == [6, 6, 6, 6, 6]
    assert sorted(i for ids_ in splits.values() for i in ids_) == ids
    # a label with a single image stays in training
    tiny = stratified_split(["a", "b", "c", "d", "e", "f"], [0, 0, 0, 0, 0, 1], 0.2, 0.2, 0)
    assert "f" in tiny["train"]


def test_write_splits_skips_and_removes_empty(tmp_path: Path) -> None:
    write_splits(tmp_path, {"train": ["a"], "val": ["b"], "test": ["c"]})
    written = write_splits(tmp_path, {"train": ["a", "b"], "val": [], "test": ["c"]})
    assert sorted(written) == ["test", "train"]
    assert not (tmp_path / "splits" / "val.txt").exists()
    assert read_ids(tmp_path / "splits" / "train.txt") == ["a", "b"]


def test_check_same_classes_reports_wrong_class_count() -> None:
    six = ClassTable(names=tuple("abcdef"), colors=((0, 0, 0),) * 6)
    three = ClassTable(names=("a", "b", "c"), colors=((0, 0, 0),) * 3)
    check_same_classes(six, six.to_dict(), "checkpoint x.pt", "dataset y")
    with pytest.raises(DataError, match=r"checkpoint x\.pt has 6 classes .* dataset y has 3"):
        check_same_classes(six.to_dict(), three, "checkpoint x.pt", "dataset y")
    swapped = ClassTable(names=("b", "a", "c"), colors=((0, 0, 0),) * 3)
    with pytest.raises(DataError, match="other names/order"):
        check_same_classes(three, swapped, "checkpoint x.pt", "dataset y")
