"""The ``dataset.json`` file of a prepared dataset folder: kind, parameters, data location.

Every ``als4gan prepare`` writes ``OUT/dataset.json``. Its keys:

- ``dataset``: the dataset name (``--dataset`` to use with ``--root OUT``);
- ``params``: the preparation parameters (a re-run with the same ones is a no-op, with other
  ones it needs ``--force``);
- ``complete``: false while preparation runs, true once every file is written (an interrupted
  run is resumed);
- ``source`` (only for datasets that are not copied, ``ucm`` and ``folder``): where the images
  and masks are, absolute or relative to OUT. The split lists live in ``OUT/splits``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from als4gan.errors import ConfigError, DataError, DatasetNotFoundError, RunExistsError
from als4gan.io import read_json, write_json

#: Name of the metadata file of a prepared dataset folder.
META_FILE = "dataset.json"


def read_meta(root: str | Path) -> dict[str, Any] | None:
    """``root/dataset.json`` as a dict, or ``None`` when absent.

    Raises:
        DataError: If the file exists but is not a JSON object.
    """
    path = Path(root) / META_FILE
    if not path.is_file():
        return None
    try:
        meta = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(
            f"{path} is not valid JSON ({err}). Re-run 'als4gan prepare' for this folder."
        ) from None
    if not isinstance(meta, dict):
        raise DataError(f"{path} must hold a JSON object. Re-run 'als4gan prepare'.")
    return meta


def check_dataset_kind(root: str | Path, name: str) -> dict[str, Any] | None:
    """Return the metadata of ``root`` after checking it was prepared for dataset ``name``.

    Raises:
        ConfigError: If ``root/dataset.json`` names another dataset.
    """
    meta = read_meta(root)
    if meta is not None and meta.get("dataset") not in (None, name):
        raise ConfigError(
            f"{Path(root)} holds a '{meta['dataset']}' dataset (see {Path(root) / META_FILE}), "
            f"not '{name}'. Pass --dataset {meta['dataset']}."
        )
    return meta


def data_root(root: str | Path, meta: dict[str, Any] | None) -> Path:
    """Folder holding the images and masks: ``meta["source"]`` (relative to root) or root.

    Raises:
        DatasetNotFoundError: If ``dataset.json`` points to a folder that does not exist.
    """
    if meta is None or not meta.get("source"):
        return Path(root)
    source = Path(str(meta["source"]))
    folder = source if source.is_absolute() else Path(root) / source
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{Path(root) / META_FILE} says the images and masks are in {folder}, which does "
            "not exist. Move the data back there, or re-run 'als4gan prepare' with the new "
            "--src."
        )
    return folder


def source_reference(out: Path, src: Path) -> str:
    """How ``dataset.json`` records ``src``: ``"."`` when preparing in place, else absolute."""
    if out.resolve() == src.resolve():
        return "."
    return str(src.resolve())


def start_prepare(out: Path, name: str, params: dict[str, Any], force: bool) -> str:
    """Check ``out`` before (re-)preparing dataset ``name`` with ``params``.

    Returns:
        ``"complete"`` if ``out`` already holds a finished preparation with the same parameters
        (nothing to do); ``"resume"`` if an interrupted one with the same parameters is there
        (files already written can be kept); ``"fresh"`` otherwise (everything is rewritten).
        Unless complete, ``out/dataset.json`` is marked as in progress.

    Raises:
        RunExistsError: If ``out`` was prepared (fully or partly) with other parameters and
            ``force`` is false.
    """
    params = json.loads(json.dumps(params))  # same types as read back from disk
    meta = read_meta(out)
    state = "fresh"
    if meta is not None:
        same = meta.get("dataset") == name and meta.get("params") == params
        if same and meta.get("complete"):
            if not force:
                return "complete"
        elif same:
            state = "resume"
        elif not force:
            raise RunExistsError(
                f"{out} already holds a '{meta.get('dataset')}' dataset prepared with other "
                f"parameters ({meta.get('params')}). Pass --force to overwrite it, or choose "
                "another --out."
            )
    write_json(out / META_FILE, {"dataset": name, "params": params, "complete": False})
    return state


def finish_prepare(out: Path, name: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Write the final ``dataset.json`` (``complete: true``) and return it."""
    meta: dict[str, Any] = {"dataset": name, "params": json.loads(json.dumps(params))}
    meta.update(extra)
    meta["complete"] = True
    write_json(out / META_FILE, meta)
    return meta


__all__ = [
    "META_FILE",
    "check_dataset_kind",
    "data_root",
    "finish_prepare",
    "read_meta",
    "source_reference",
    "start_prepare",
]
