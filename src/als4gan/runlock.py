"""One process per run folder: an exclusive lock held for the life of a stage.

Every stage that writes into a folder (``prepare`` into its dataset root, ``select``,
``train``, ``evaluate`` into a run folder, ``predict`` into its output folder, ``run`` into
its experiment folder) calls :func:`claim_folder` first. The lock is an ``fcntl.flock`` on
``FOLDER/.lock``, a file that records the holder's pid and host; the operating system releases
it when the process ends, crash and ``kill -9`` included, so a stale lock never blocks a rerun.
A second process is refused with the holder's pid and host instead of writing over its files.

Claiming a folder also removes the temporary files that an interrupted atomic write left in it
(``.NAME.XXXXXXXX.tmp``, see :func:`als4gan.io.atomic_open`): while we hold the lock nobody
else can be writing them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from pathlib import Path
from typing import IO

from als4gan.errors import RunLockedError

log = logging.getLogger(__name__)

#: Name of the lock file inside a claimed folder.
LOCK_FILE = ".lock"

#: Temporaries written by :func:`als4gan.io.atomic_open`: ``.<name>.<8 random chars>.tmp``.
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")

#: Folders this process holds: resolved path -> open lock file.
_HELD: dict[Path, IO[str]] = {}


def is_secondary_rank() -> bool:
    """Whether this is a non-zero rank of a distributed (torchrun) job.

    Only rank 0 writes a run folder, so only it takes the lock: the other ranks of the same job
    must not be refused.
    """
    return os.environ.get("RANK", "0") not in ("", "0")


def held_folders() -> set[Path]:
    """Folders locked by this process now."""
    return set(_HELD)


def claim_folder(folder: str | os.PathLike[str], *, clean: bool = True) -> Path:
    """Lock ``folder`` for this process (creating it) and remove stale temporaries in it.

    Claiming a folder this process already holds does nothing (a grid run calls every stage
    in-process). The lock is released by :func:`release_folders` or when the process ends.

    Args:
        folder: The run folder, dataset root or output folder.
        clean: Remove stale ``.*.tmp`` files of interrupted atomic writes below ``folder``.

    Returns:
        The resolved folder.

    Raises:
        RunLockedError: If another process holds the folder.
    """
    import fcntl

    path = Path(folder).expanduser().resolve()
    if path in _HELD or is_secondary_rank():
        return path
    if path.exists() and not path.is_dir():
        from als4gan.errors import ConfigError

        raise ConfigError(f"{path} is a file, not a folder; choose a folder for the output")
    path.mkdir(parents=True, exist_ok=True)
    handle = open(path / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held open
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().split()
        handle.close()
        pid = holder[0] if holder else "?"
        host = holder[1] if len(holder) > 1 else "?"
        raise RunLockedError(
            f"{path} is in use by pid {pid} on host {host}. Wait for that process to finish "
            "(or stop it), or choose another folder."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} {socket.gethostname()}\n")
    handle.flush()
    _HELD[path] = handle
    if clean:
        remove_stale_temporaries(path)
    return path


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporaries of interrupted atomic writes below ``folder`` (call under the lock).

    Sub-folders that have a lock file of their own are skipped.

    Returns:
        The files removed.
    """
    removed: list[Path] = []
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        # A sub-folder with its own lock (a cell of a grid) is cleaned by whoever claims it:
        # another process may be writing there right now.
        dirs[:] = [name for name in dirs if not (here / name / LOCK_FILE).exists()]
        for name in files:
            if _TEMPORARY.match(name):
                with contextlib.suppress(FileNotFoundError):
                    (here / name).unlink()
                    removed.append(here / name)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted write", len(removed))
    return removed


def release_folders(keep: set[Path] | None = None) -> None:
    """Release every folder this process holds except those in ``keep``."""
    for path in list(_HELD):
        if keep is not None and path in keep:
            continue
        handle = _HELD.pop(path)
        with contextlib.suppress(OSError):
            handle.close()  # closing the descriptor releases the flock


__all__ = [
    "LOCK_FILE",
    "claim_folder",
    "held_folders",
    "release_folders",
    "remove_stale_temporaries",
]
