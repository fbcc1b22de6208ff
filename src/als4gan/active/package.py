"""The annotation package of a round of ``select --oracle human``, and where a selection stands.

When a round waits for masks, ``RUN_DIR/selection/`` gets:

* ``to_label.txt``: the ids whose masks are still missing, one per line;
* ``round_<k>/images/``: the round's images (symbolic links, or copies where links are not
  possible; GeoTIFFs keep their georeference since the files are not re-encoded);
* ``round_<k>/tasks.csv``: ``id,image,score,mask`` per requested image (``score``: the
  strategy's score, empty for the initial random set; ``mask``: the file to save);
* ``round_<k>/label_studio.json``: Label Studio tasks ``{"data": {"image": URL}, "meta": ...}``
  with local-file URLs (``/data/local-files/?d=PATH``, PATH relative to
  ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` when that variable is set, else to ``/``);
* ``round_<k>/README.txt``: what to do next.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from als4gan.data.base import SegmentationDataset
from als4gan.io import atomic_write_text, read_json, write_json

TO_LABEL_FILE = "to_label.txt"
ROUND_DIR = "round_{round}"
TASKS_FILE = "tasks.csv"
LABEL_STUDIO_FILE = "label_studio.json"
README_FILE = "README.txt"
#: Environment variable of Label Studio's local-file serving root.
LS_ROOT_ENV = "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"


def masks_folder(dataset: SegmentationDataset) -> Path:
    """Where masks are saved: the dataset's ``masks/`` folder."""
    folder = getattr(dataset, "masks_dir", None)
    return Path(folder) if folder is not None else Path(dataset.root) / "masks"


def local_files_url(path: Path) -> str:
    """Label Studio's URL of a local file (``/data/local-files/?d=relative/path``)."""
    resolved = path.resolve()
    root = Path(os.environ.get(LS_ROOT_ENV) or "/").resolve()
    try:
        relative = resolved.relative_to(root)
    except ValueError:
        relative = resolved.relative_to(resolved.anchor)
    return f"/data/local-files/?d={relative.as_posix()}"


def _link_or_copy(source: Path, target: Path) -> None:
    if target.is_symlink() or target.exists():
        target.unlink()
    try:
        target.symlink_to(source.resolve())
    except OSError:
        shutil.copy2(source, target)


def _label_studio_task(
    source: Path, sample_id: str, round_index: int, rank: int, score: float | None, mask: Path
) -> dict[str, Any]:
    """One Label Studio task: the image as a local-files URL, the rest as metadata."""
    return {
        "data": {"image": local_files_url(source)},
        "meta": {
            "id": sample_id,
            "round": round_index,
            "rank": rank,
            "score": score,
            "mask": str(mask),
        },
    }


def write_round_package(
    folder: Path,
    dataset: SegmentationDataset,
    round_index: int,
    ids: Sequence[str],
    missing: Sequence[str],
    scores: Sequence[float] | None,
    command: str | None,
) -> Path:
    """Write ``to_label.txt`` and ``round_<k>/`` for a round waiting for masks.

    Args:
        folder: ``RUN_DIR/selection``.
        dataset: The pool.
        round_index: The round (0 = initial set).
        ids: Every id the round asks for, in rank order.
        missing: Those still without a mask.
        scores: The strategy's scores of ``ids`` (``None`` for a random draw).
        command: The command that continues the selection (shown to the user).

    Returns:
        The round folder.
    """
    package = folder / ROUND_DIR.format(round=round_index)
    images = package / "images"
    images.mkdir(parents=True, exist_ok=True)
    masks = masks_folder(dataset)
    missing_set = set(missing)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "image", "score", "mask", "status"])
    tasks: list[dict[str, Any]] = []
    for rank, sample_id in enumerate(ids):
        source = dataset.image_path(sample_id)
        if source is None:
            continue
        target = images / Path(source).name
        _link_or_copy(Path(source), target)
        score = "" if scores is None else repr(float(scores[rank]))
        mask = masks / f"{sample_id}.png"
        status = "missing" if sample_id in missing_set else "saved"
        writer.writerow([sample_id, str(target), score, str(mask), status])
        value = None if scores is None else float(scores[rank])
        tasks.append(_label_studio_task(Path(source), sample_id, round_index, rank, value, mask))
    atomic_write_text(package / TASKS_FILE, buffer.getvalue())
    write_json(package / LABEL_STUDIO_FILE, tasks)
    atomic_write_text(folder / TO_LABEL_FILE, "".join(f"{i}\n" for i in missing))
    atomic_write_text(
        package / README_FILE,
        next_steps(round_index, len(ids), list(missing), masks, package, command) + "\n",
    )
    return package


def next_steps(
    round_index: int,
    requested: int,
    missing: list[str],
    masks: Path,
    package: Path,
    command: str | None,
) -> str:
    """The instructions printed (and saved in the package) when a round waits for masks."""
    what = "the initial set" if round_index == 0 else f"round {round_index}"
    lines = [
        f"waiting for masks: {what} asks for {requested} image(s), {len(missing)} still "
        "without a mask",
        f"  images to label: {package / 'images'} (list: {package.parent / TO_LABEL_FILE}; "
        f"Label Studio import: {package / LABEL_STUDIO_FILE})",
        f"  save each mask as {masks}/<id>.png (or .tif), same size as its image, with the "
        "values or colours of the classes file",
    ]
    if command:
        lines.append(f"  then continue with: {command}")
    return "\n".join(lines)


def selection_status(folder: Path) -> dict[str, Any]:
    """Where the selection in ``folder`` (``RUN_DIR/selection``) stands.

    Returns:
        ``state`` (``"not started"``, ``"waiting"``, ``"running"`` or ``"done"``),
        ``rounds_done``, ``labelled``, ``budget``, ``num_rounds``, and for a waiting
        selection ``round`` and ``waiting_for`` (ids).
    """
    from als4gan.active.pool import STATE_FILE

    state_file = folder / STATE_FILE
    if not state_file.is_file():
        return {"state": "not started", "folder": str(folder)}
    state = read_json(state_file)
    plan = state.get("plan") or {}
    rounds = state.get("rounds", [])
    status: dict[str, Any] = {
        "folder": str(folder),
        "rounds_done": len(rounds),
        "labelled": len(state.get("labelled", [])),
        "budget": plan.get("budget"),
        "num_rounds": plan.get("num_rounds"),
    }
    pending = state.get("pending")
    if pending is not None:
        to_label = folder / TO_LABEL_FILE
        waiting = (
            [line.strip() for line in to_label.read_text().splitlines() if line.strip()]
            if to_label.is_file()
            else list(pending["ids"])
        )
        status.update(state="waiting", round=len(rounds), waiting_for=waiting)
    elif (folder / "labeled.txt").is_file():
        status["state"] = "done"
    else:
        status["state"] = "running"
    return status


def describe_status(status: dict[str, Any]) -> str:
    """``select --status``: a few lines a user reads."""
    state = status["state"]
    if state == "not started":
        return f"no selection in {status['folder']}"
    lines = [
        f"selection in {status['folder']}: {state}; {status['labelled']} of "
        f"{status['budget']} images labelled, {status['rounds_done']} of "
        f"{(status['num_rounds'] or 0) + 1} round(s) done (round 0 = initial set)"
    ]
    if state == "waiting":
        waiting = status["waiting_for"]
        shown = ", ".join(waiting[:20]) + (" ..." if len(waiting) > 20 else "")
        lines.append(f"round {status['round']} waits for {len(waiting)} mask(s): {shown}")
    return "\n".join(lines)


__all__ = [
    "LABEL_STUDIO_FILE",
    "TASKS_FILE",
    "TO_LABEL_FILE",
    "describe_status",
    "local_files_url",
    "next_steps",
    "selection_status",
    "write_round_package",
]
