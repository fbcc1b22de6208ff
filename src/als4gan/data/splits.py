"""Seeded train/val/test splits of image ids (random or stratified), written as plain text lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from als4gan.data.base import SPLITS_DIR
from als4gan.errors import ConfigError, DataError
from als4gan.io import write_ids

#: Split names written by ``als4gan prepare``, in this order.
SPLIT_NAMES = ("train", "val", "test")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise :class:`ConfigError` unless both fractions lie in [0, 1) and leave training data."""
    for name, value in (("--val-fraction", val_fraction), ("--test-fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must lie in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            f"--val-fraction ({val_fraction}) + --test-fraction ({test_fraction}) must be below "
            "1 so that some images are left for training"
        )


def split_sizes(count: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Sizes (train, val, test) for ``count`` images.

    Sizes are rounded to the nearest integer; a split with a positive fraction gets at least
    one image when there are enough images (at least one per requested split plus one for
    training).

    Raises:
        DataError: If ``count`` is zero (an empty pool cannot be split).
    """
    check_fractions(val_fraction, test_fraction)
    if count <= 0:
        raise DataError("there are no images to split (empty pool)")
    requested = 1 + int(val_fraction > 0) + int(test_fraction > 0)
    n_val = round(count * val_fraction)
    n_test = round(count * test_fraction)
    if count >= requested:
        n_val = max(n_val, int(val_fraction > 0))
        n_test = max(n_test, int(test_fraction > 0))
    while n_val + n_test >= count and (n_val or n_test):
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return count - n_val - n_test, n_val, n_test


def random_split(
    ids: Sequence[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Split ids at random (seeded; independent of the input order).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each list sorted.
    """
    ordered = sorted(set(ids))
    if len(ordered) != len(ids):
        raise DataError("duplicate ids in the pool to split")
    _, n_val, n_test = split_sizes(len(ordered), val_fraction, test_fraction)
    order = np.random.default_rng(seed).permutation(len(ordered))
    shuffled = [ordered[i] for i in order]
    return {
        "train": sorted(shuffled[n_val + n_test :]),
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
    }


def _largest_remainder(quotas: np.ndarray, total: int) -> np.ndarray:
    """Integer allocation summing to ``total`` closest to real ``quotas`` (Hamilton's method)."""
    base = np.floor(quotas).astype(np.int64)
    remaining = total - int(base.sum())
    if remaining > 0:
        # stable order: largest fractional part first, ties to the lower index
        order = np.argsort(-(quotas - base), kind="stable")
        base[order[:remaining]] += 1
    allocation: np.ndarray = base
    return allocation


def stratified_split(
    ids: Sequence[str],
    labels: Sequence[int],
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, list[str]]:
    """Split so that every label keeps (about) its share in every split (seeded).

    The split sizes are those of :func:`split_sizes`; each label's share of the validation and
    test sets is allocated by the largest-remainder method, then ids are drawn at random within
    each label.

    Args:
        ids: Image ids.
        labels: One integer label per id (e.g. the UC Merced scene class).
        val_fraction: Share of ids for validation.
        test_fraction: Share of ids for test.
        seed: Seed of the draw.
    """
    if len(ids) != len(labels):
        raise ValueError("ids and labels must have the same length")
    if len(set(ids)) != len(ids):
        raise DataError("duplicate ids in the pool to split")
    _, n_val, n_test = split_sizes(len(ids), val_fraction, test_fraction)
    by_label: dict[int, list[str]] = {}
    for sample_id, label in sorted(zip(ids, labels, strict=True)):
        by_label.setdefault(int(label), []).append(sample_id)
    keys = sorted(by_label)
    counts = np.array([len(by_label[key]) for key in keys], dtype=np.float64)
    val_per_label = _largest_remainder(counts * n_val / len(ids), n_val)
    test_per_label = _largest_remainder(counts * n_test / len(ids), n_test)
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {name: [] for name in SPLIT_NAMES}
    for key, n_v, n_t in zip(keys, val_per_label, test_per_label, strict=True):
        members = by_label[key]
        # never take a label's last image away from training when it has several
        n_v = int(min(n_v, max(0, len(members) - 1)))
        n_t = int(min(n_t, max(0, len(members) - 1 - n_v)))
        shuffled = [members[i] for i in rng.permutation(len(members))]
        out["val"].extend(shuffled[:n_v])
        out["test"].extend(shuffled[n_v : n_v + n_t])
        out["train"].extend(shuffled[n_v + n_t :])
    return {name: sorted(values) for name, values in out.items()}


def write_splits(root: str | Path, splits: Mapping[str, Sequence[str]]) -> dict[str, Path]:
    """Write ``root/splits/<name>.txt`` for every non-empty split.

    A split that came out empty (its fraction was 0) gets no file, and an old file of that
    name is removed so that a stale list is never read.

    Returns:
        Split name -> written path.
    """
    folder = Path(root) / SPLITS_DIR
    written: dict[str, Path] = {}
    for name, ids in splits.items():
        path = folder / f"{name}.txt"
        if ids:
            write_ids(path, ids)
            written[name] = path
        elif path.is_file():
            path.unlink()
    return written


def describe_splits(splits: Mapping[str, Sequence[str]]) -> str:
    """``"train 9, val 2, test 2"``."""
    return ", ".join(f"{name} {len(ids)}" for name, ids in splits.items())


__all__ = [
    "SPLIT_NAMES",
    "check_fractions",
    "describe_splits",
    "random_split",
    "split_sizes",
    "stratified_split",
    "write_splits",
]
