"""The stage functions behind the CLI and :mod:`als4gan.api`, one module per stage.

Each module holds the stage's typed config (where the stage has its own), its result, and the
orchestration around the work: claiming the run folder, refusing to overwrite finished work,
resuming, writing the resolved config and marking the stage in ``status.json``. Heavy modules
(torch) are imported inside the functions, so importing a stage module is cheap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def releasing_folders() -> Iterator[None]:
    """Release, on exit, the run folders a stage claimed; those held before stay held.

    Used as a decorator of every stage function, so that a Python caller (a notebook, a grid
    running stage after stage) does not keep the folders of finished stages locked.
    """
    from als4gan.runlock import held_folders, release_folders

    held = held_folders()
    try:
        yield
    finally:
        release_folders(keep=held)
