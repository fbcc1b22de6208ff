"""Stopping a training run cleanly: SIGINT/SIGTERM end it at an iteration boundary."""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType
from typing import Any

logger = logging.getLogger("als4gan.train.trainer")


class StopRequests:
    """SIGINT/SIGTERM set a flag that the loop checks between iterations (a second SIGINT aborts).

    Stopping at an iteration boundary lets the trainer write a consistent ``latest.pt`` that
    ``--resume`` continues exactly. Handlers are only installed in the main thread. DataLoader
    worker processes inherit the handler (and receive the terminal's Ctrl-C too): there it does
    nothing, so the message is printed once, by the process that installed it.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        self._pid = os.getpid()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            return  # a forked worker: the main process stops the loop and the workers with it
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning(
            "\nstop requested: finishing this iteration and saving checkpoints/latest.pt "
            "(press Ctrl-C again to abort without saving)"
        )

    def __enter__(self) -> StopRequests:
        import threading

        self._pid = os.getpid()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
