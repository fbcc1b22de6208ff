"""Check every sample a stage will read before it starts, and fingerprint the data.

``select`` and ``train`` read thousands of files in worker processes; one unreadable file or one
mask of another size would otherwise stop them mid-run with a worker traceback. Before any work
they call :func:`require_readable_samples`: every image and mask file of the split is opened
(header and size; PNG chunks are checksummed), image and mask sizes are compared, and all
problems are listed at once. Results are cached per file by size and modification time
(``$ALS4GAN_CACHE_DIR``, default ``~/.cache/als4gan``), so a rerun checks only changed files.

The same file facts give a fingerprint of the split (ids, file sizes and modification times):
a training run records it and ``train --resume`` refuses to continue on other data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from als4gan.data.base import SegmentationDataset
from als4gan.errors import DataError

#: Environment variable naming the folder of the check cache.
CACHE_ENV = "ALS4GAN_CACHE_DIR"

#: Problems listed in full in an error message (the rest are counted).
MAX_LISTED = 20

_GEOTIFF = (".tif", ".tiff")


@dataclass
class Preflight:
    """Outcome of checking a split.

    Attributes:
        problems: One line per unusable sample (file and reason).
        fingerprint: SHA-256 over ids, file sizes and modification times, in split order.
        samples: Number of samples checked.
    """

    problems: list[str] = field(default_factory=list)
    fingerprint: str = ""
    samples: int = 0


def _cache_path(root: Path) -> Path:
    base = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "als4gan")
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return base / f"preflight-{digest}.json"


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_cache(path: Path, cache: dict[str, Any]) -> None:
    from als4gan.io import atomic_write_text

    with contextlib.suppress(OSError):  # a read-only home only costs the next check its speed
        atomic_write_text(path, json.dumps(cache))


def read_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file from its header (PNG chunks are also checksummed).

    Raises:
        Exception: Whatever the decoder raises for an unreadable file.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                size = image.size
                if image.format == "PNG":
                    image.verify()  # walks every chunk: a truncated file fails here
                return int(size[0]), int(size[1])
    except Exception:
        if path.suffix.lower() not in _GEOTIFF:
            raise
    import rasterio

    with rasterio.open(path) as src:
        return int(src.width), int(src.height)


def _file_facts(path: Path, cache: dict[str, Any]) -> dict[str, Any]:
    """Size, modification time, pixel size or problem of ``path`` (from the cache if fresh).

    A fresh result is stored in ``cache`` (a missing file is not).
    """
    try:
        stat = path.stat()
    except OSError as err:
        return {"problem": f"{path}: missing or unreadable ({err.strerror})"}
    key = str(path)
    cached = cache.get(key)
    if (
        isinstance(cached, dict)
        and cached.get("bytes") == stat.st_size
        and cached.get("mtime_ns") == stat.st_mtime_ns
    ):
        return cached
    facts: dict[str, Any] = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        facts["size"] = list(read_size(path))
    except Exception as err:  # any decoder error means the stage would fail on this file
        facts["problem"] = f"{path}: not a readable image ({type(err).__name__}: {err})"
    cache[key] = facts
    return facts


def check_samples(
    dataset: SegmentationDataset, ids: list[str] | None = None, masks_optional: bool = False
) -> Preflight:
    """Check the image and mask file of every sample of ``dataset`` (or of ``ids``).

    Datasets whose samples have no files of their own (no ``image_path``) are fingerprinted by
    id only. With ``masks_optional`` an id without a mask (unlabelled) is checked by its image
    alone; otherwise its missing mask is a problem.
    """
    chosen = list(dataset.ids if ids is None else ids)
    cache_file = _cache_path(Path(dataset.root))
    cache = _load_cache(cache_file)
    before = json.dumps(cache, sort_keys=True)
    result = Preflight(samples=len(chosen))
    digest = hashlib.sha256()
    for sample_id in chosen:
        digest.update(sample_id.encode() + b"\0")
        sizes: list[tuple[Path, list[int]]] = []
        files: list[tuple[str, Path | None]] = [("image", dataset.image_path(sample_id))]
        if dataset.has_mask(sample_id):
            files.append(("mask", dataset.mask_path(sample_id)))
        elif not masks_optional:
            result.problems.append(f"'{sample_id}': has no mask")
        for kind, path in files:
            if path is None:
                continue
            facts = _file_facts(Path(path), cache)
            digest.update(f"{kind}:{facts.get('bytes')}:{facts.get('mtime_ns')};".encode())
            if "problem" in facts:
                result.problems.append(f"'{sample_id}': {facts['problem']}")
            else:
                sizes.append((Path(path), list(facts["size"])))
        if len(sizes) == 2 and sizes[0][1] != sizes[1][1]:
            (image, image_size), (mask, mask_size) = sizes
            result.problems.append(
                f"'{sample_id}': image {image} is {image_size[0]}x{image_size[1]} but mask {mask} "
                f"is {mask_size[0]}x{mask_size[1]} (width x height)"
            )
    if json.dumps(cache, sort_keys=True) != before:
        _save_cache(cache_file, cache)
    result.fingerprint = digest.hexdigest()
    return result


def require_readable_samples(
    dataset: SegmentationDataset,
    what: str,
    ids: list[str] | None = None,
    masks_optional: bool = False,
) -> Preflight:
    """:func:`check_samples`, raising one error that lists every problem.

    Args:
        dataset: The dataset a stage will read.
        what: What the samples are for, e.g. ``"the training split"`` (used in the message).
        ids: Only these samples (default: all of ``dataset``).
        masks_optional: Accept ids without a mask (unlabelled images).

    Raises:
        DataError: If any sample cannot be used.
    """
    result = check_samples(dataset, ids, masks_optional)
    if result.problems:
        listed = result.problems[:MAX_LISTED]
        more = len(result.problems) - len(listed)
        lines = "\n  ".join(listed + ([f"... and {more} more"] if more else []))
        raise DataError(
            f"{len(result.problems)} of {result.samples} samples of {what} cannot be used "
            f"(nothing was run):\n  {lines}\nRe-export or remove these files, or drop their ids "
            "from the split file; 'als4gan data stats' lists every problem of a split."
        )
    return result


__all__ = ["CACHE_ENV", "Preflight", "check_samples", "read_size", "require_readable_samples"]
