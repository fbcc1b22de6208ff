"""Where a grid's time went: wall seconds per stage (selection, training, evaluation, report).

An experiment runs each stage through the stage functions of a
:class:`~als4gan.experiment.runner.Stages` object; :meth:`StageTimer.stages` wraps them and adds
up the wall time of each stage, so the split is measured, not estimated. Validation during
training counts as training; the rest of the wall time (start-up, weights, results tables) is
shown as "other".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from als4gan.experiment.runner import Stages

T = TypeVar("T")

#: Stage -> its name in the printed split, in the order printed.
STAGES: dict[str, str] = {
    "prepare": "data",
    "select": "selection",
    "train": "training",
    "evaluate": "evaluation",
    "report": "report",
}


class StageTimer:
    """Adds up the wall time of each stage run through the :meth:`stages` it hands out.

    Args:
        clock: Seconds since an arbitrary point (default :func:`time.monotonic`).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def timed(self, stage: str, function: Callable[..., T]) -> Callable[..., T]:
        """``function`` (the stage ``stage``), counting its wall time, also when it raises."""

        def run(*args: Any, **kwargs: Any) -> T:
            start = self.clock()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(stage, self.clock() - start)

        return run

    def stages(self, inner: Stages | None = None) -> Stages:
        """A copy of ``inner`` (default: the real stage functions) whose stages are timed."""
        from als4gan.experiment.runner import Stages

        base = inner if inner is not None else Stages()
        timed = Stages()
        for stage in STAGES:
            setattr(timed, stage, self.timed(stage, getattr(base, stage)))
        timed.resumed_config = base.resumed_config  # type: ignore[method-assign]
        return timed

    def add(self, stage: str, seconds: float) -> None:
        """Count ``seconds`` of wall time for sub-command ``stage``."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.calls[stage] = self.calls.get(stage, 0) + 1

    def split(self, total: float) -> list[tuple[str, float, int]]:
        """``(stage name, seconds, calls)`` in :data:`STAGES` order, then others, then "other".

        Args:
            total: The whole wall time; what no stage accounts for is reported as "other".
        """
        known = [key for key in STAGES if key in self.seconds]
        extra = sorted(key for key in self.seconds if key not in STAGES)
        rows = [(STAGES.get(key, key), self.seconds[key], self.calls[key]) for key in known]
        rows += [(key or "?", self.seconds[key], self.calls[key]) for key in extra]
        rows.append(("other", max(0.0, total - sum(self.seconds.values())), 0))
        return rows

    def describe(self, total: float) -> str:
        """The split as printed at the end of a run: one line per stage, seconds and share."""
        return format_split(self.split(total), total)


def format_split(rows: Sequence[tuple[str, float, int]], total: float) -> str:
    """Lines ``"  selection   123.4 s  25.0%  (3 runs)"`` under a heading with the total."""
    lines = [f"time split (wall, measured): {total:.1f} s in all"]
    for name, seconds, calls in rows:
        share = 100.0 * seconds / total if total > 0 else 0.0
        runs = f"  ({calls} run{'s' if calls != 1 else ''})" if calls else ""
        lines.append(f"  {name:<11s}{seconds:8.1f} s {share:5.1f}%{runs}")
    return "\n".join(lines)
