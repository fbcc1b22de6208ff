"""The labelled / unlabelled pool as explicit state that is saved after every round and restored.

Like baal's ``ActiveLearningDataset.state_dict``: the pool (ids in split order), the labelled ids
in the order they were chosen, and one record per finished round. ``state.json`` in the
selection folder is written atomically after each round, so an interrupted selection resumes
from the last completed round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from als4gan.errors import DataError
from als4gan.io import read_json, write_json

#: File holding the pool state in the selection folder.
STATE_FILE = "state.json"
STATE_FORMAT = "als4gan-selection-state"


class PoolState:
    """Which images of the pool are labelled, and how each round chose them.

    Args:
        pool_ids: All image ids of the pool, in split order (the tie-breaking order).

    Raises:
        DataError: If the pool lists an id twice.
    """

    def __init__(self, pool_ids: Sequence[str]) -> None:
        self.pool_ids = list(pool_ids)
        self._position = {sample_id: index for index, sample_id in enumerate(self.pool_ids)}
        if len(self._position) != len(self.pool_ids):
            counts = Counter(self.pool_ids)
            duplicates = sorted(i for i, n in counts.items() if n > 1)
            raise DataError(
                f"the pool lists {len(duplicates)} id(s) more than once (e.g. "
                f"{', '.join(duplicates[:3])}); fix the split file so each image appears once"
            )
        self.labelled: list[str] = []
        self._labelled_set: set[str] = set()
        self.rounds: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ queries
    @property
    def completed_rounds(self) -> int:
        """Rounds finished, the initial random draw counting as round 0 (so 0 = nothing yet)."""
        return len(self.rounds)

    def position(self, sample_id: str) -> int:
        """Index of ``sample_id`` in the pool."""
        return self._position[sample_id]

    def is_labelled(self, sample_id: str) -> bool:
        """Whether ``sample_id`` is labelled."""
        return sample_id in self._labelled_set

    def unlabelled(self) -> list[str]:
        """Unlabelled ids, in pool order."""
        return [i for i in self.pool_ids if i not in self._labelled_set]

    def labelled_in_pool_order(self) -> list[str]:
        """Labelled ids, in pool order."""
        return [i for i in self.pool_ids if i in self._labelled_set]

    # ------------------------------------------------------------------ updates
    def add_round(self, ids: Sequence[str], record: dict[str, Any]) -> None:
        """Label ``ids`` and keep ``record`` (round number, scores, ...) for this round.

        Raises:
            ValueError: If an id is unknown, already labelled, or repeated.
        """
        new = list(ids)
        if len(set(new)) != len(new):
            raise ValueError("a round chose the same image twice")
        for sample_id in new:
            if sample_id not in self._position:
                raise ValueError(f"'{sample_id}' is not in the pool")
            if sample_id in self._labelled_set:
                raise ValueError(f"'{sample_id}' is already labelled")
        self.labelled.extend(new)
        self._labelled_set.update(new)
        self.rounds.append({**record, "round": self.completed_rounds, "ids": new})

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`load_state_dict` restores."""
        return {
            "format": STATE_FORMAT,
            "version": 1,
            "pool_size": len(self.pool_ids),
            "labelled": list(self.labelled),
            "rounds": [dict(record) for record in self.rounds],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore labelled ids and round records (the pool itself must be the same).

        Raises:
            DataError: If the state does not belong to this pool.
        """
        if state.get("format") != STATE_FORMAT:
            raise DataError("not an als4gan selection state")
        if int(state.get("pool_size", -1)) != len(self.pool_ids):
            raise DataError(
                f"the saved selection state is for a pool of {state.get('pool_size')} images, "
                f"but the split now has {len(self.pool_ids)}"
            )
        self.labelled = []
        self._labelled_set = set()
        self.rounds = []
        try:
            for record in state.get("rounds", []):
                self.add_round(record["ids"], {k: v for k, v in record.items() if k != "ids"})
        except (ValueError, KeyError) as err:
            raise DataError(
                f"the saved selection state does not match the pool ({err}); was the split "
                "file changed?"
            ) from None
        if self.labelled != list(state.get("labelled", [])):
            raise DataError("the saved selection state is inconsistent (labelled ids vs rounds)")

    def save(self, folder: str | Path, **extra: Any) -> None:
        """Write ``folder/state.json`` atomically (``extra`` keys are stored alongside)."""
        write_json(Path(folder) / STATE_FILE, {**self.state_dict(), **extra})

    @staticmethod
    def read(folder: str | Path) -> dict[str, Any] | None:
        """The saved state in ``folder`` (``None`` when there is none)."""
        path = Path(folder) / STATE_FILE
        if not path.is_file():
            return None
        data = read_json(path)
        return data if isinstance(data, dict) else None
