"""Finding images and masks under a dataset root: one implementation for every reader.

The UC Merced, DeepGlobe and folder readers all look for the first existing folder of a list
(:func:`first_dir`) and map sample ids to files by scanning a folder in sorted order
(:func:`scan_files`); they differ only in the folder names, the extensions and how a file
name gives an id, which they pass in. Where the images of a prepared folder lie
(``dataset.json``'s ``source``) is :func:`als4gan.data.prepared.data_root`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from als4gan.errors import ConfigError, DataError

#: What :func:`scan_files` does when two files give the same id.
DUPLICATE_MODES = ("error", "last")


def first_dir(root: Path, candidates: Sequence[str]) -> Path | None:
    """The first of ``root / name`` for ``name`` in ``candidates`` that is a folder, or None."""
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return None


def _stem(path: Path) -> str | None:
    return path.stem


def _listing(folder: Path, nested: bool) -> list[Path]:
    """Files of ``folder`` in sorted order, then (``nested``) those of each sub-folder."""
    entries = sorted(folder.iterdir())
    files = [path for path in entries if path.is_file()]
    if nested:
        for sub in entries:
            if sub.is_dir():
                files.extend(sorted(path for path in sub.iterdir() if path.is_file()))
    return files


def scan_files(
    folder: Path,
    extensions: Sequence[str],
    id_of: Callable[[Path], str | None] = _stem,
    *,
    nested: bool = False,
    duplicates: str = "error",
    label: str = "id",
) -> tuple[dict[str, Path], list[Path]]:
    """Map sample ids to the files of ``folder`` with one of ``extensions`` (any case).

    Args:
        folder: The folder to scan (must exist).
        extensions: Accepted suffixes, lower case with the dot (``(".png", ".tif")``).
        id_of: The id a file gives (default: its stem); ``None`` = the file is not a sample.
        nested: Also scan the sub-folders, one level deep (after the folder's own files).
        duplicates: ``"error"``: two files with one id raise :class:`DataError`;
            ``"last"``: the last file in sorted order wins.
        label: How the message names an id (``"DeepGlobe id"``).

    Returns:
        (id -> file, files with an accepted extension that give no id), in sorted order.

    Raises:
        DataError: If two files give the same id and ``duplicates`` is ``"error"``.
    """
    if duplicates not in DUPLICATE_MODES:
        raise ConfigError(f"duplicates must be one of {', '.join(DUPLICATE_MODES)}")
    found: dict[str, Path] = {}
    skipped: list[Path] = []
    for path in _listing(folder, nested):
        if path.suffix.lower() not in extensions:
            continue
        sample_id = id_of(path)
        if sample_id is None:
            skipped.append(path)
            continue
        if sample_id in found and duplicates == "error":
            raise DataError(
                f"{label} '{sample_id}' has two files: {found[sample_id]} and {path}. "
                "Keep one of them."
            )
        found[sample_id] = path
    return found, skipped


__all__ = ["DUPLICATE_MODES", "first_dir", "scan_files"]
