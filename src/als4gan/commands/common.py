"""Options shared by several sub-commands (dataset selection, device, output folder)."""

from __future__ import annotations

import argparse
from typing import Any

#: Names of the dataset formats, kept here so that parsing arguments does not import torch.
#: Must equal the keys of :data:`als4gan.data.DATASETS` (a test checks it).
DATASET_NAMES: tuple[str, ...] = ("deepglobe", "folder", "synthetic", "ucm")


def add_dataset_arguments(
    parser: argparse.ArgumentParser, *, split_default: str | None = "train"
) -> None:
    """Add ``--dataset``, ``--root``, ``--split`` and the dataset-specific options.

    Args:
        parser: The sub-command parser.
        split_default: Default of ``--split``; ``None`` omits the ``--split`` option.
    """
    group = parser.add_argument_group("dataset")
    group.add_argument(
        "--dataset",
        default="synthetic",
        choices=DATASET_NAMES,
        help="dataset format (default: synthetic)",
    )
    group.add_argument("--root", help="dataset root folder (as written by 'als4gan prepare')")
    if split_default is not None:
        group.add_argument(
            "--split",
            default=split_default,
            help=(
                f"split name under ROOT/splits, a .txt id list, or 'all' (default: {split_default})"
            ),
        )
    group.add_argument(
        "--classes-file",
        default=None,
        help="folder datasets: YAML/JSON class table (names, colours or values, ignore values)",
    )
    group.add_argument(
        "--bands",
        type=int,
        nargs="+",
        default=None,
        help="folder datasets: 1-based image bands to read from GeoTIFFs (default: first three)",
    )


def dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """Dataset-specific keyword options from parsed args (only those that were set).

    ``--classes-file`` and ``--bands`` become ``classes_file`` / ``bands`` of the ``folder``
    dataset; :func:`als4gan.data.build_dataset` rejects them, with a clear message, for
    datasets that take no such option. A folder prepared with ``als4gan prepare folder``
    records both, so later stages need neither.
    """
    options: dict[str, Any] = {}
    if getattr(args, "classes_file", None):
        options["classes_file"] = args.classes_file
    if getattr(args, "bands", None):
        options["bands"] = list(args.bands)
    if getattr(args, "image_max", None) is not None:
        options["image_max"] = float(args.image_max)
    return options


def require_root(args: argparse.Namespace) -> str:
    """``--root``, or a clear error when it is missing."""
    from als4gan.errors import ConfigError

    if not getattr(args, "root", None):
        raise ConfigError(
            "--root is required: the dataset folder written by 'als4gan prepare' "
            "(e.g. 'als4gan prepare synthetic --out data/synthetic', then --root data/synthetic)"
        )
    return str(args.root)
