"""The selection stage: choose which images to label, into RUN_DIR/selection/.

:func:`select` claims the run folder, refuses to change the labelled set under a model trained
on it (``force`` deletes that training run), runs the selection loop (resuming an interrupted
one) and marks a failure in ``status.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from als4gan.stages import releasing_folders

if TYPE_CHECKING:
    from als4gan.active.config import SelectConfig

#: Who labels the chosen images: the pool's masks (simulated) or a person.
ORACLES = ("masks", "human")


@dataclass
class SelectResult:
    """What :func:`select` did.

    Attributes:
        folder: ``RUN_DIR/selection``.
        labelled: Labelled ids in selection order (so far, for a waiting selection).
        waiting: Whether a human-oracle round waits for masks (run again once they are saved).
        message: What ``als4gan select`` prints (where it went, or what to do next); empty in
            the other processes of a ``torchrun`` job, so that only rank 0 reports.
        selection: The selection loop's own result (``None`` when nothing ran: a finished
            human-oracle selection only reports its status).
    """

    folder: Path
    labelled: list[str] = field(default_factory=list)
    waiting: bool = False
    message: str = ""
    selection: Any = None


def selection_status(run_dir: str | Path) -> str:
    """Where the selection in ``run_dir`` stands (round, labelled, ids waiting), in words."""
    from als4gan.active.loop import SELECTION_DIR
    from als4gan.active.package import describe_status
    from als4gan.active.package import selection_status as status_of

    return describe_status(status_of(Path(run_dir) / SELECTION_DIR))


def check_no_training(out: str | Path, force: bool) -> None:
    """Refuse to change the labelled set under a model trained on it (``force``: start over).

    With ``force`` the training run, its evaluations and its report are deleted, since they
    belong to the labelled set being replaced.

    Raises:
        RunExistsError: If ``out`` holds a training run and ``force`` is false.
    """
    from als4gan.errors import RunExistsError
    from als4gan.io import RunDir
    from als4gan.stages.train import clear_training

    run_dir = RunDir(out)
    trained = "train" in run_dir.status() or (run_dir.path / "checkpoints" / "latest.pt").is_file()
    if not trained:
        return
    if not force:
        raise RunExistsError(
            f"{out} holds a training run on its current labelled set; a new selection would "
            "change that set under the trained model. Choose another --out, or pass --force to "
            "delete the training run (and its evaluations) and select again."
        )
    clear_training(run_dir)


def _describe(result: Any, config: SelectConfig, initial_given: bool) -> str:
    """``selected N of M images (how) -> folder``, or the next steps of a waiting selection."""
    from als4gan.active.strategies import LOW_BUDGET_STRATEGIES

    plan = result.plan
    if result.waiting:
        return (
            f"waiting: {len(result.labelled)} of {plan.budget} images labelled so far\n"
            f"{result.next_steps}"
        )
    how = (
        f"all by {result.strategy} on pretrained embeddings"
        if result.strategy in LOW_BUDGET_STRATEGIES
        else f"{plan.initial_size} {'given' if initial_given else config.initial_strategy} + "
        f"{plan.num_rounds} round(s) of {result.strategy}"
    )
    auto = " (chosen by --strategy auto)" if config.strategy == "auto" else ""
    count = f"{len(result.labelled)} of {plan.pool_size} images"
    return f"selected {count} ({how}){auto} -> {result.folder}"


@releasing_folders()
def select(
    config: SelectConfig,
    out: str | Path,
    *,
    force: bool = False,
    resume: bool = True,
    oracle: str = "masks",
    initial: str | Path | None = None,
    command: str | None = None,
) -> SelectResult:
    """Choose which images of a split to label under a budget (active learning).

    Args:
        config: Dataset, budget, strategy and acquisition model (see docs/selection.md).
        out: Run folder; the selection goes to ``out/selection/``.
        force: Redo a finished selection (and delete a training run made on it).
        resume: Continue an interrupted selection (default); ``False`` starts over.
        oracle: ``masks`` (simulated from the pool's masks) or ``human`` (stop after each
            round until a person saves the masks).
        initial: File of ids, one per line, for the initial set instead of a random draw.
        command: The command that continues a waiting human-oracle selection (shown to the
            user; default: none).

    Returns:
        The labelled ids and where they were written, or what a waiting round needs.

    Raises:
        RunExistsError: If ``out`` holds a finished selection (without ``force``) or a
            training run on it.
        ConfigError / DataError: For invalid options or data (the stage is marked failed).
    """
    from als4gan.errors import ConfigError
    from als4gan.io import RunDir, read_ids
    from als4gan.runlock import claim_folder, is_secondary_rank

    if oracle not in ORACLES:
        raise ConfigError(f"oracle must be one of {', '.join(ORACLES)}, got {oracle!r}")
    claim_folder(out)
    folder = Path(out) / "selection"
    if oracle == "human" and RunDir(out).is_done("select") and not force:
        return SelectResult(folder, message=selection_status(out))
    if not is_secondary_rank():  # only rank 0 of a torchrun job writes
        check_no_training(out, force)
    initial_ids = read_ids(initial) if initial else None
    options = {"force": force, "resume": resume, "oracle": oracle, "command": command}
    result = _run_marking_failure(config, out, options, initial_ids)
    message = _describe(result, config, bool(initial)) if result.is_main else ""
    return SelectResult(result.folder, list(result.labelled), result.waiting, message, result)


def _run_marking_failure(
    config: SelectConfig, out: str | Path, options: dict[str, Any], initial: list[str] | None
) -> Any:
    """The selection loop; a failure is marked in ``status.json`` (never left "running")."""
    from als4gan.active.loop import run_selection
    from als4gan.io import RunDir

    try:
        return run_selection(config, str(out), initial_ids=initial, **options)
    except Exception as err:  # disk full, unreadable file...: never leave "running"
        RunDir(out).mark_failed_if_running("select", err)
        raise
