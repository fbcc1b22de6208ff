"""Datasets (one registry), label encodings, transforms and splits."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from als4gan.data.base import ALL_SPLIT, Sample, SegmentationDataset, read_split
from als4gan.data.deepglobe import DeepGlobeDataset
from als4gan.data.encoding import IGNORE_INDEX, ClassTable
from als4gan.data.folder import FolderDataset
from als4gan.data.options import dataset_options
from als4gan.data.synthetic import SyntheticDataset
from als4gan.data.ucm import UCMercedDataset
from als4gan.errors import ConfigError

#: Dataset name -> class. Every stage takes ``--dataset NAME --root DIR``.
DATASETS: dict[str, type[SegmentationDataset]] = {
    "synthetic": SyntheticDataset,
    "deepglobe": DeepGlobeDataset,
    "ucm": UCMercedDataset,
    "folder": FolderDataset,
}


def build_dataset(
    name: str,
    root: str | Path,
    split: str = "train",
    **options: Any,
) -> SegmentationDataset:
    """Create dataset ``name`` reading ``root``.

    Args:
        name: A key of :data:`DATASETS`.
        root: Dataset root folder.
        split: Split name, id-list path, or ``"all"``.
        **options: Passed to the dataset class (e.g. ``transform``, ``ids``, ``classes_file``).

    Raises:
        ConfigError: If ``name`` is unknown (the message lists the valid names) or an option
            does not apply to that dataset (e.g. ``classes_file`` outside ``folder``).
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset '{name}'. Choose one of: {', '.join(DATASETS)}")
    accepted = inspect.signature(DATASETS[name].__init__).parameters
    unsupported = sorted(key for key in options if key not in accepted)
    if unsupported:
        flags = ", ".join("--" + key.replace("_", "-") for key in unsupported)
        takers = [
            other
            for other, cls in DATASETS.items()
            if all(key in inspect.signature(cls.__init__).parameters for key in unsupported)
        ]
        hint = f" It applies to --dataset {' / '.join(takers)}." if takers else ""
        raise ConfigError(f"{flags} cannot be used with --dataset {name}.{hint}")
    return DATASETS[name](root, split, **options)


__all__ = [
    "ALL_SPLIT",
    "DATASETS",
    "IGNORE_INDEX",
    "ClassTable",
    "Sample",
    "SegmentationDataset",
    "build_dataset",
    "dataset_options",
    "read_split",
]
