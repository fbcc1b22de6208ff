"""The selection folder: file names, the result of a selection, and writing its final files.

``RUN_DIR/selection/`` is described in :mod:`als4gan.active.loop`; this module writes what a
finished selection leaves there and clears what an earlier one left.
"""

from __future__ import annotations

import io
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from als4gan.active.budget import BudgetPlan
from als4gan.active.config import SelectConfig
from als4gan.active.package import TO_LABEL_FILE
from als4gan.active.pool import STATE_FILE, PoolState
from als4gan.active.sheet import write_contact_sheet
from als4gan.active.strategies import QueryStrategy
from als4gan.data.base import SegmentationDataset
from als4gan.io import RunDir, atomic_write_bytes, write_ids, write_json

log = logging.getLogger(__name__)

STAGE = "select"
SELECTION_DIR = "selection"
LABELED_FILE = "labeled.txt"
UNLABELED_FILE = "unlabeled.txt"
SELECTION_FILE = "selection.json"
CONFIG_FILE = "config.yaml"
SHEET_FILE = "contact_sheet.png"
NAMES_FILE = "labeled_names.npy"
TIMING_FILE = "timing.json"
MODEL_STATE = "acquisition_round{round}.pt"


@dataclass
class SelectionResult:
    """What :func:`als4gan.active.loop.run_selection` produced.

    Attributes:
        folder: ``RUN_DIR/selection``.
        labelled: Labelled ids in selection order (exactly the budget).
        unlabelled: The rest of the pool, in pool order.
        plan: The budget arithmetic.
        resumed_from: Rounds found finished on start (0 = fresh start).
        timing: Wall times (seconds): total, and per round train / score.
        waiting_round: With ``--oracle human``: the round waiting for masks (``None`` when the
            selection is finished; ``labelled``/``unlabelled`` are then the state so far).
        waiting_for: Ids of that round still without a mask.
        package: That round's annotation package folder.
        next_steps: What to do next, for a waiting selection (printed by the command).
        strategy: The strategy that ran (for ``--strategy auto``, the one it chose).
        is_main: ``False`` in the other processes of a ``torchrun`` job (they write nothing
            and return rank 0's result).
    """

    folder: Path
    labelled: list[str]
    unlabelled: list[str]
    plan: BudgetPlan
    resumed_from: int
    timing: dict[str, Any] = field(default_factory=dict)
    waiting_round: int | None = None
    waiting_for: list[str] = field(default_factory=list)
    package: Path | None = None
    next_steps: str = ""

    @property
    def waiting(self) -> bool:
        """Whether the selection waits for masks (``--oracle human``)."""
        return self.waiting_round is not None

    strategy: str = ""
    is_main: bool = True


def clear_state(folder: Path) -> None:
    """Remove resume state and the outputs of an earlier selection (a fresh start)."""
    outputs = (
        LABELED_FILE, UNLABELED_FILE, SELECTION_FILE, SHEET_FILE, NAMES_FILE, TIMING_FILE,
        "embedding_map.png",
    )  # fmt: skip
    for file in [
        folder / STATE_FILE,
        *folder.glob("acquisition_round*.pt"),
        *(folder / name for name in (*outputs, TO_LABEL_FILE)),
    ]:
        file.unlink(missing_ok=True)
    for package in folder.glob("round_*"):
        if package.is_dir():
            shutil.rmtree(package)


def save_npy(path: Path, names: list[str]) -> None:
    """``names`` as a numpy unicode array (the reference code's ``labeled_names.npy``)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(names, dtype=np.str_), allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def images(count: int) -> str:
    """``"1 image"``, ``"3 images"``."""
    return f"{count} image" if count == 1 else f"{count} images"


def check_invariants(pool: PoolState, plan: BudgetPlan) -> None:
    """Exactly the budget (plus volunteered masks) labelled, each once, the rest unlabelled.

    Raises:
        RuntimeError: If an invariant is broken (a bug, never a user error).
    """
    labelled = pool.labelled
    # Masks saved for images not asked for (--oracle human) are labelled beyond the budget.
    volunteered = sum(len(record.get("volunteered", [])) for record in pool.rounds)
    if len(labelled) != plan.budget + volunteered or len(set(labelled)) != len(labelled):
        raise RuntimeError(
            f"selection invariant broken: {len(labelled)} labelled ids "
            f"({len(set(labelled))} distinct) for a budget of {plan.budget}"
        )
    if len(labelled) + len(pool.unlabelled()) != plan.pool_size:
        raise RuntimeError("selection invariant broken: labelled + unlabelled != pool")


def write_id_files(
    folder: Path, dataset: SegmentationDataset, config: SelectConfig, plan: BudgetPlan,
    pool: PoolState,
) -> None:  # fmt: skip
    """``labeled.txt``, ``unlabeled.txt``, ``labeled_names.npy`` and the contact sheet."""
    labelled = list(pool.labelled)
    write_ids(folder / LABELED_FILE, labelled)
    write_ids(folder / UNLABELED_FILE, pool.unlabelled())
    save_npy(folder / NAMES_FILE, labelled)
    rounds_of = [record["round"] for record in pool.rounds for _ in record["ids"]]
    write_contact_sheet(
        folder / SHEET_FILE,
        dataset,
        labelled,
        rounds_of,
        title=(
            f"{dataset.name} {config.split}: {config.strategy} selection of {plan.budget} of "
            f"{plan.pool_size} images (seed {config.seed}; r0 = {pool.rounds[0]['strategy']} set)"
        ),
        max_images=config.sheet_max,
    )


def selection_record(
    dataset: SegmentationDataset,
    config: SelectConfig,
    config_dict: dict[str, Any],
    plan: BudgetPlan,
    pool: PoolState,
    strategy: QueryStrategy,
    model: dict[str, Any] | None,
    labelled_histogram: dict[str, Any] | None,
) -> dict[str, Any]:
    """The content of ``selection.json`` (deterministic: no wall times)."""
    return {
        "format": "als4gan-selection",
        "version": 1,
        "dataset": dataset.describe(),
        "strategy": strategy.name,
        "seed": config.seed,
        "acquisition": model,
        "budget": {**plan.to_dict(), "formula": plan.describe()},
        "config": config_dict,
        "labelled": {"count": len(pool.labelled), "histogram": labelled_histogram},
        "rounds": pool.rounds,
        "files": {
            "labeled": LABELED_FILE,
            "unlabeled": UNLABELED_FILE,
            "names_npy": NAMES_FILE,
            "contact_sheet": SHEET_FILE,
        },
    }


def timing_record(
    timing_rounds: list[dict[str, Any]], resumed_from: int, started: float
) -> dict[str, Any]:
    """The content of ``timing.json``: this invocation's wall time and each round's."""
    return {
        "total_seconds_this_invocation": time.perf_counter() - started,
        "resumed_from_round": resumed_from - 1 if resumed_from else None,
        "train_seconds": sum(r["train"] for r in timing_rounds),
        "score_seconds": sum(r["score"] for r in timing_rounds),
        "rounds": timing_rounds,
    }


def finish(
    run_dir: RunDir,
    folder: Path,
    dataset: SegmentationDataset,
    config: SelectConfig,
    config_dict: dict[str, Any],
    plan: BudgetPlan,
    pool: PoolState,
    strategy: QueryStrategy,
    model: Any,
    labelled_histogram: dict[str, Any] | None,
    timing_rounds: list[dict[str, Any]],
    resumed_from: int,
    started: float,
) -> SelectionResult:
    """Check the invariants and write the selection files (``model``: the acquisition model)."""
    check_invariants(pool, plan)
    write_id_files(folder, dataset, config, plan, pool)
    described = model.describe() if model is not None else None
    write_json(
        folder / SELECTION_FILE,
        selection_record(
            dataset, config, config_dict, plan, pool, strategy, described, labelled_histogram
        ),
    )
    timing = timing_record(timing_rounds, resumed_from, started)
    write_json(folder / TIMING_FILE, timing)
    pool.save(
        folder, config=config_dict, plan=plan.to_dict(), model_round=None, timing=timing_rounds
    )
    for file in folder.glob("acquisition_round*.pt"):
        file.unlink()
    labelled, unlabelled = list(pool.labelled), pool.unlabelled()
    run_dir.mark_done(STAGE, labelled=len(labelled), strategy=strategy.name, folder=str(folder))
    log.info(
        "selection written to %s (%d labelled, %d unlabelled)",
        folder,
        len(labelled),
        len(unlabelled),
    )
    return SelectionResult(
        folder=folder,
        labelled=labelled,
        unlabelled=unlabelled,
        plan=plan,
        resumed_from=resumed_from,
        timing=timing,
        strategy=strategy.name,
    )
