"""Who labels the images a selection round asks for: the oracle.

The selection loop (:func:`als4gan.active.loop.run_selection`) is the same in both modes; only
the oracle differs:

* :class:`MaskOracle` (``--oracle masks``, the default) simulates active learning: every pool
  image already has its mask, which is simply read when the round asks for it.
* :class:`HumanOracle` (``--oracle human``) asks a person: when the requested masks are not all
  in the dataset's ``masks/`` folder yet, it writes the round's annotation package
  (:mod:`als4gan.active.package`) and answers "waiting"; the command exits, and running it again
  once the masks are saved checks them and continues.

Checks of the human oracle, before anything advances: every requested mask exists, has the size
of its image, and holds only values/colours of the classes file; a mask saved for an image that
was not asked for joins the labelled set (logged); a mask already used by an earlier round that
has disappeared is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from als4gan.data.base import SegmentationDataset
from als4gan.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Called when a round waits: ``(round_index, requested ids, missing ids, scores)``.
WaitingHook = Callable[[int, list[str], list[str], Sequence[float] | None], None]

#: Most problems listed in one message.
MAX_LISTED = 20


@dataclass
class Reveal:
    """The oracle's answer for one round.

    Attributes:
        waiting: Ids whose masks are still missing (empty = the round is labelled).
        extra: Ids not asked for whose masks were found; they join the labelled set.
    """

    waiting: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """Whether every requested image is labelled."""
        return not self.waiting


class Oracle(Protocol):
    """Labels the images a round asks for."""

    name: str

    def reveal(
        self,
        ids: Sequence[str],
        labelled: Sequence[str],
        round_index: int,
        scores: Sequence[float] | None = None,
    ) -> Reveal:
        """Label ``ids`` (chosen in round ``round_index``), or say which ones are missing.

        Args:
            ids: The ids the round asks for, in rank order.
            labelled: Ids labelled by earlier rounds.
            round_index: The round (0 = the initial set).
            scores: The strategy's scores of ``ids`` (``None`` for a random draw).

        Raises:
            DataError: If a mask is unusable (the message names every bad file).
        """
        ...


class MaskOracle:
    """Simulation: the masks of the pool already exist and are read when asked for.

    Args:
        dataset: The pool.
    """

    name = "masks"

    def __init__(self, dataset: SegmentationDataset) -> None:
        self.dataset = dataset

    def reveal(
        self,
        ids: Sequence[str],
        labelled: Sequence[str],
        round_index: int,
        scores: Sequence[float] | None = None,
    ) -> Reveal:
        """Nothing to wait for; an id without a mask is an error in simulation."""
        missing = [sample_id for sample_id in ids if not self.dataset.has_mask(sample_id)]
        if missing:
            raise DataError(
                f"round {round_index} chose {len(missing)} image(s) without a mask (e.g. "
                f"'{missing[0]}'): '--oracle masks' simulates labelling from existing masks. "
                "For an unlabelled pool use '--oracle human' (see docs/selection.md)."
            )
        return Reveal()


def check_masks(dataset: SegmentationDataset, ids: Sequence[str]) -> list[str]:
    """Problems of the masks of ``ids``: unreadable, another size than the image, bad values.

    Returns:
        One line per bad mask, naming its file (empty when all are usable).
    """
    from als4gan.data.preflight import read_size

    problems: list[str] = []
    for sample_id in ids:
        mask_path = dataset.mask_path(sample_id)
        image_path = dataset.image_path(sample_id)
        where = str(mask_path) if mask_path is not None else f"the mask of '{sample_id}'"
        try:
            if mask_path is not None and image_path is not None:
                image_size = read_size(Path(image_path))
                mask_size = read_size(Path(mask_path))
                if image_size != mask_size:
                    problems.append(
                        f"{where}: {mask_size[0]}x{mask_size[1]} pixels, but its image "
                        f"{image_path} is {image_size[0]}x{image_size[1]} (width x height)"
                    )
                    continue
            dataset.load_mask(sample_id)
        except Exception as err:  # any decoder error: the file is named, nothing advances
            problems.append(f"{where}: {err}")
    return problems


class HumanOracle:
    """A person labels the requested images by saving masks into the dataset's ``masks/``.

    Args:
        dataset: The pool (a dataset with a ``masks/`` folder, e.g. ``--dataset folder``).
        pool_ids: All pool ids (to find masks saved for images not asked for).
        on_waiting: Called with ``(round_index, ids, missing, scores)`` when masks are missing
            (writes the annotation package).
    """

    name = "human"

    def __init__(
        self,
        dataset: SegmentationDataset,
        pool_ids: Sequence[str],
        on_waiting: WaitingHook | None = None,
    ) -> None:
        if not hasattr(dataset, "refresh_masks"):
            raise ConfigError(
                f"--oracle human needs a dataset whose masks are files that a person saves "
                f"('--dataset folder'); '{dataset.name}' is not one"
            )
        self.dataset = dataset
        self.pool_ids = list(pool_ids)
        self.on_waiting = on_waiting

    def reveal(
        self,
        ids: Sequence[str],
        labelled: Sequence[str],
        round_index: int,
        scores: Sequence[float] | None = None,
    ) -> Reveal:
        """Check the masks of ``ids`` (and that earlier ones are still there).

        Raises:
            DataError: If a mask used by an earlier round is gone, or a saved mask is unusable
                (wrong size, values outside the classes file): nothing advances.
        """
        self.dataset.refresh_masks()
        requested = list(ids)
        gone = [sample_id for sample_id in labelled if not self.dataset.has_mask(sample_id)]
        if gone:
            masks = self.dataset.masks_dir  # type: ignore[attr-defined]
            raise DataError(
                f"{len(gone)} mask(s) already used by earlier rounds are gone from {masks} "
                f"(e.g. '{gone[0]}'): the selection was made with them and cannot continue "
                "without them. Restore them (they are listed in the round packages)."
            )
        taken = set(labelled) | set(requested)
        extra = [
            sample_id
            for sample_id in self.pool_ids
            if sample_id not in taken and self.dataset.has_mask(sample_id)
        ]
        present = [sample_id for sample_id in requested if self.dataset.has_mask(sample_id)]
        problems = check_masks(self.dataset, present + extra)
        if problems:
            listed = problems[:MAX_LISTED]
            more = len(problems) - len(listed)
            lines = "\n  ".join(listed + ([f"... and {more} more"] if more else []))
            raise DataError(
                f"{len(problems)} saved mask(s) cannot be used, so round {round_index} does not "
                f"advance:\n  {lines}\nFix or re-export these files and run the same command "
                "again."
            )
        missing = [sample_id for sample_id in requested if not self.dataset.has_mask(sample_id)]
        if missing:
            if self.on_waiting is not None:
                self.on_waiting(round_index, requested, missing, scores)
            return Reveal(waiting=missing)
        if extra:
            log.info(
                "round %d: %d mask(s) saved for images not asked for join the labelled set: %s",
                round_index,
                len(extra),
                ", ".join(extra[:10]) + (" ..." if len(extra) > 10 else ""),
            )
        return Reveal(extra=extra)


#: ``--oracle`` choices.
ORACLES: tuple[str, ...] = ("masks", "human")


__all__ = ["ORACLES", "HumanOracle", "MaskOracle", "Oracle", "Reveal", "check_masks"]
