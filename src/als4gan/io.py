"""Atomic file writing, small readers/writers (JSON, YAML, id lists) and run-folder state."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from als4gan.errors import ConfigError, DatasetNotFoundError, RunExistsError

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` and move it into place only on success.

    A crash or exception while writing leaves any previous file at ``path`` untouched.

    Args:
        path: Final destination.
        mode: ``"wb"`` or ``"w"``.

    Yields:
        The open temporary file.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports modes 'wb' and 'w', not {mode!r}")
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        # mkstemp creates the file private (0600); give it the permissions a plain open() would.
        os.fchmod(fd, 0o666 & ~_current_umask())
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, dest)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(err, OSError) and err.errno is not None and not err.filename:
            # A failed write() names no file; say which one could not be written.
            raise OSError(err.errno, err.strerror or str(err), str(dest)) from err
        raise


def _current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def _json_default(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths and dataclass-like objects for JSON."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")


def write_json(path: PathLike, data: Any) -> None:
    """Write ``data`` as pretty JSON, atomically. NaN is written as ``null``."""
    text = json.dumps(_nan_to_none(data), indent=2, default=_json_default, allow_nan=False)
    atomic_write_text(path, text + "\n")


def _nan_to_none(obj: Any) -> Any:
    """Replace float NaN/inf recursively by None so the JSON stays standard."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {key: _nan_to_none(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(value) for value in obj]
    if hasattr(obj, "tolist"):
        return _nan_to_none(obj.tolist())
    return obj


def read_json(path: PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def append_jsonl(path: PathLike, record: dict[str, Any]) -> None:
    """Append one JSON record as a line (flushed, so a crash loses at most this line)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(_nan_to_none(record), default=_json_default, allow_nan=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()


def read_jsonl(path: PathLike) -> list[dict[str, Any]]:
    """Read a JSON-lines file, skipping a truncated last line left by a crash."""
    records: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def write_yaml(path: PathLike, data: Any) -> None:
    """Write ``data`` as block-style YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def read_yaml(path: PathLike) -> Any:
    """Read a YAML file with the safe loader.

    Raises:
        ConfigError: If the file is not valid YAML, or uses tags (``!!python/...``) that the
            safe loader refuses to construct: no code from a YAML file is ever run.
    """
    with open(path, encoding="utf-8") as handle:
        try:
            return yaml.safe_load(handle)
        except yaml.YAMLError as err:
            detail = " ".join(str(err).split())
            raise ConfigError(
                f"{path} is not a valid YAML file of plain values ({detail}). Fix or recreate "
                "it; tags such as !!python/object are refused on purpose."
            ) from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path} is not a UTF-8 text file ({err})") from None


def write_ids(path: PathLike, ids: Iterable[str]) -> None:
    """Write ids one per line (the split / selection file format), atomically."""
    atomic_write_text(path, "".join(f"{sample_id}\n" for sample_id in ids))


def read_ids(path: PathLike) -> list[str]:
    """Read ids written by :func:`write_ids` (blank lines and ``#`` comments are skipped).

    Raises:
        DatasetNotFoundError: If the file does not exist.
    """
    file = Path(path)
    if not file.is_file():
        raise DatasetNotFoundError(f"id list {file} does not exist")
    ids = []
    for line in file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ids.append(line)
    return ids


def utc_now() -> str:
    """Current UTC time as an ISO-8601 string (seconds precision)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


class RunDir:
    """A run folder and the completion state of each stage run in it.

    Every stage (``select``, ``train``, ``evaluate``...) records itself in
    ``RUN_DIR/status.json`` when it finishes. A stage refuses to start again over a finished
    result unless ``force`` is given, so a user's finished work is never silently overwritten.

    Args:
        path: The run folder (created on demand).
    """

    STATUS_FILE = "status.json"

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)

    def __truediv__(self, other: str) -> Path:
        return self.path / other

    @property
    def status_path(self) -> Path:
        """Path of the status file."""
        return self.path / self.STATUS_FILE

    def status(self) -> dict[str, Any]:
        """The recorded stage states (empty when nothing finished yet).

        Raises:
            RunExistsError: If ``status.json`` is corrupt (the message says how to recover).
        """
        if not self.status_path.is_file():
            return {}
        try:
            data = read_json(self.status_path)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RunExistsError(
                f"{self.status_path} is corrupt ({err}), so which stages finished is unknown. "
                "Delete that file and rerun the stage with --force (or --resume for training), "
                "or choose another --out folder."
            ) from None
        if not isinstance(data, dict):
            raise RunExistsError(
                f"{self.status_path} must hold a JSON object of stage states; delete it and "
                "rerun the stage with --force, or choose another --out folder."
            )
        return data

    def is_done(self, stage: str) -> bool:
        """Whether ``stage`` has finished in this run folder."""
        entry = self.status().get(stage)
        return isinstance(entry, dict) and entry.get("state") == "done"

    def check_can_start(self, stage: str, force: bool) -> None:
        """Refuse to redo a finished stage without ``force``.

        Raises:
            RunExistsError: If the stage is done and ``force`` is false.
        """
        if self.is_done(stage) and not force:
            raise RunExistsError(
                f"{self.path} already holds a finished '{stage}' stage. Pass --force to overwrite "
                "it, or choose another --out folder."
            )

    def mark(self, stage: str, state: str, **info: Any) -> None:
        """Record ``state`` (``running``/``done``/``failed``) for ``stage`` with extra info."""
        self.path.mkdir(parents=True, exist_ok=True)
        status = self.status()
        status[stage] = {"state": state, "time": utc_now(), **info}
        write_json(self.status_path, status)

    def mark_running(self, stage: str, **info: Any) -> None:
        """Record that ``stage`` started."""
        self.mark(stage, "running", **info)

    def mark_done(self, stage: str, **info: Any) -> None:
        """Record that ``stage`` finished."""
        self.mark(stage, "done", **info)

    def mark_failed(self, stage: str, error: BaseException) -> None:
        """Record that ``stage`` failed, as far as the disk allows (never raises ``OSError``)."""
        with contextlib.suppress(OSError, RunExistsError):
            self.mark(stage, "failed", error=f"{type(error).__name__}: {error}")

    def mark_failed_if_running(self, stage: str, error: BaseException) -> None:
        """:meth:`mark_failed` when ``stage`` is recorded as running (it started here)."""
        with contextlib.suppress(Exception):
            if self.status().get(stage, {}).get("state") != "running":
                return
        self.mark_failed(stage, error)

    def forget(self, *stages: str) -> None:
        """Drop the status entries of ``stages`` (``"evaluate:*"`` matches every split)."""
        status = self.status()
        kept = {
            name: entry
            for name, entry in status.items()
            if not any(
                name == stage or (stage.endswith("*") and name.startswith(stage[:-1]))
                for stage in stages
            )
        }
        if kept != status:
            write_json(self.status_path, kept)
