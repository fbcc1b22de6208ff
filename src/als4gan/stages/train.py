"""The training stage: a run folder's checks, locks and status around :class:`Trainer`.

:func:`train` is what ``als4gan train`` and ``als4gan run`` call: it claims the run folder,
refuses to overwrite a run without ``force``, writes ``config.yaml`` and the labelled lists,
marks the stage running/done/failed/stopped in ``status.json`` and returns a
:class:`TrainResult`. Heavy modules (torch) are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from als4gan.stages import releasing_folders

if TYPE_CHECKING:
    from als4gan.io import RunDir
    from als4gan.train.config import TrainConfig

logger = logging.getLogger("als4gan.train")

#: Files of a training run in RUN_DIR besides checkpoints/ (all rewritten by a new run).
TRAINING_FILES = (
    "config.yaml",
    "metrics.jsonl",
    "train_labeled.txt",
    "train_unlabeled.txt",
    "dataset_fingerprint.json",
)

#: File in RUN_DIR recording which data a training run reads.
FINGERPRINT_FILE = "dataset_fingerprint.json"

#: Config fields holding paths, made absolute when a run starts (so --resume works anywhere).
PATH_FIELDS = ("root", "selection", "classes_file")


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes:
        run_dir: The run folder.
        state: ``"done"`` (trained to the last iteration), ``"stopped"`` (``stop_after`` or a
            signal: resumable), or ``"skipped"`` (already finished; nothing to do).
        step: Iterations done.
        iterations: Iterations asked for.
        best_miou: Best validation mIoU (``None`` without validation).
        best_step: Step of that checkpoint.
        stopped_by_signal: Whether Ctrl-C / SIGTERM stopped it (the CLI exits with 130).
        message: The line ``als4gan train`` prints (empty on secondary DDP processes).
    """

    run_dir: Path
    state: str
    step: int = 0
    iterations: int = 0
    best_miou: float | None = None
    best_step: int | None = None
    stopped_by_signal: bool = False
    message: str = ""

    @property
    def finished(self) -> bool:
        """Whether the run trained to its last iteration (now or before)."""
        return self.state in ("done", "skipped")


def absolute_paths(config: TrainConfig) -> TrainConfig:
    """``config`` with its dataset, selection and class-table paths made absolute."""
    changes: dict[str, Any] = {
        key: str(Path(getattr(config, key)).expanduser().resolve())
        for key in PATH_FIELDS
        if getattr(config, key)
    }
    return dataclasses.replace(config, **changes)


def resumed_config(out: str | Path, changes: Mapping[str, Any]) -> TrainConfig:
    """The saved config of the run in ``out`` with ``changes`` applied (to continue it).

    Only the options of ``RESUMABLE_OVERRIDES`` (device, workers, checkpoint and validation
    frequency, ...) may differ from the saved ones; equal values are ignored.

    Raises:
        RunExistsError: If ``out`` holds no run (no ``config.yaml``).
        ConfigError: If ``config.yaml`` is truncated or a change is not allowed.
    """
    from als4gan.config import config_from_dict
    from als4gan.errors import ConfigError, RunExistsError
    from als4gan.io import read_yaml
    from als4gan.train.config import RESUMABLE_OVERRIDES, TrainConfig

    saved_path = Path(out) / "config.yaml"
    if not saved_path.is_file():
        raise RunExistsError(
            f"{out} holds no training run to resume (no config.yaml); start one without --resume"
        )
    saved_data = read_yaml(saved_path)
    if not isinstance(saved_data, dict) or not saved_path.read_bytes().endswith(b"\n"):
        raise ConfigError(
            f"{saved_path} is incomplete (truncated?), so the run cannot be resumed exactly. "
            "Start over with --force (same options), or restore the file."
        )
    saved = config_from_dict(TrainConfig, saved_data, source=str(saved_path))
    allowed: dict[str, Any] = {}
    for key, value in changes.items():
        current = getattr(saved, key)
        if isinstance(current, tuple):
            value = tuple(value)
        if value == current:
            continue
        if key not in RESUMABLE_OVERRIDES:
            raise ConfigError(
                f"--{key.replace('_', '-')} cannot change when resuming (the run was started "
                f"with {current!r}); only {', '.join(sorted(RESUMABLE_OVERRIDES))} may. Start a "
                "new run with --force or another --out to change it."
            )
        allowed[key] = value
    return dataclasses.replace(saved, **allowed)


def clear_training(run_dir: RunDir) -> None:
    """Delete a training run of ``run_dir`` and everything computed from it.

    Checkpoints (all of them, kept step checkpoints included), metrics, TensorBoard logs and the
    recorded configuration go, and so do the evaluations and the report made from the old
    model: a restarted run must never show the old model's numbers as its own.
    """
    from als4gan.checkpoint import CHECKPOINT_DIR
    from als4gan.train.records import TENSORBOARD_DIR

    for checkpoint in (run_dir.path / CHECKPOINT_DIR).glob("*.pt"):
        checkpoint.unlink(missing_ok=True)
    for name in TRAINING_FILES:
        (run_dir.path / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir.path / TENSORBOARD_DIR, ignore_errors=True)
    clear_evaluations(run_dir)
    run_dir.forget("train")


def clear_evaluations(run_dir: RunDir) -> None:
    """Delete the evaluations (RUN_DIR/eval/) and the report of ``run_dir``'s model."""
    from als4gan.stages.report import is_previous_report

    shutil.rmtree(run_dir.path / "eval", ignore_errors=True)
    report = run_dir.path / "report.html"
    if report.is_file() and is_previous_report(report):
        report.unlink()
    run_dir.forget("evaluate:*")


def _prepare_run_dir(run_dir: RunDir, resume: bool, force: bool, main: bool) -> bool:
    """Check (all processes) and prepare (main process) the run folder.

    Returns:
        Whether a checkpoint to resume from exists.

    Raises:
        RunExistsError: Instead of overwriting a finished or unfinished run without --force.
    """
    from als4gan.checkpoint import CHECKPOINT_DIR
    from als4gan.errors import RunExistsError
    from als4gan.train.records import METRICS_FILE
    from als4gan.train.trainer import LATEST

    latest = run_dir.path / CHECKPOINT_DIR / LATEST
    if resume:
        return latest.is_file()
    run_dir.check_can_start("train", force)
    started = latest.is_file() or (run_dir.path / METRICS_FILE).is_file()
    if started and not force:
        raise RunExistsError(
            f"{run_dir.path} holds an unfinished training run. Continue it with --resume, or "
            "pass --force to start over (its checkpoints and metrics are deleted)."
        )
    if main and force:
        clear_training(run_dir)
    return False


def _check_same_data(
    run_dir: RunDir, config: Any, fingerprint: str, samples: int, resuming: bool, record: bool
) -> None:
    """Check the training split's fingerprint when resuming; record it (``record``: rank 0).

    Raises:
        DataError: If a resumed run would continue on other data than it started with.
    """
    from als4gan.errors import DataError
    from als4gan.io import read_json, write_json

    path = run_dir.path / FINGERPRINT_FILE
    recorded = None
    if resuming and path.is_file():
        with contextlib.suppress(ValueError):  # unreadable: re-recorded below
            recorded = read_json(path)
    if isinstance(recorded, dict) and recorded.get("fingerprint") != fingerprint:
        raise DataError(
            f"{run_dir.path} was trained on split '{recorded.get('split')}' of "
            f"{recorded.get('root')} ({recorded.get('samples')} samples), but the split it would "
            f"resume on ({config.root}) differs: other ids, or files of another size or "
            "modification time. Resume with the data it started on (--root), or start a new "
            "run with --force or another --out."
        )
    if not record:
        return
    record_data = {"root": config.root, "split": config.split, "samples": samples}
    write_json(path, {**record_data, "fingerprint": fingerprint})


def _record_start(run_dir: RunDir, config: TrainConfig, trainer: Any, resumable: bool) -> None:
    """Write config.yaml (resolved), the labelled lists, and mark the stage running."""
    from als4gan.config import config_to_dict
    from als4gan.io import write_ids, write_yaml
    from als4gan.train.trainer import LABELLED_FILE, UNLABELLED_FILE

    # --stop-after is for this invocation only; a resumed run or a copy runs to the end.
    # The validation window is written resolved (the crop size when not given): it is
    # the regime 'als4gan evaluate' repeats on the test split.
    recorded = dataclasses.replace(config, stop_after=None, val_window=trainer.regime.window or 0)
    write_yaml(run_dir / "config.yaml", config_to_dict(recorded))
    write_ids(run_dir / LABELLED_FILE, trainer.split.labelled)
    write_ids(run_dir / UNLABELLED_FILE, trainer.split.unlabelled)
    run_dir.mark_running("train", step=trainer.step, iterations=config.iterations)
    logger.info(trainer.describe())
    if resumable:
        logger.info("resuming from step %d", trainer.step)


def _fit(run_dir: RunDir, trainer: Any, is_main: bool) -> dict[str, Any]:
    """``trainer.fit()``, marking the stage failed (main process) when it raises."""
    from als4gan.errors import TrainingDivergedError

    try:
        summary: dict[str, Any] = trainer.fit()
    except TrainingDivergedError as err:
        if is_main:
            run_dir.mark("train", "failed", step=trainer.step, error=str(err))
        raise
    except Exception as err:  # disk full, unreadable file...: never leave "running"
        if is_main:
            run_dir.mark_failed("train", err)
        raise
    return summary


def _finish(run_dir: RunDir, out: str | Path, config: TrainConfig, summary: Any) -> TrainResult:
    """Mark the stage done or stopped and describe it."""
    best = summary["best_miou"]
    best_text = (
        f"best validation mIoU {best:.4f} at step {summary['best_step']}"
        if best is not None
        else "no validation"
    )
    result = TrainResult(
        run_dir.path,
        "done" if summary["finished"] else "stopped",
        summary["step"],
        config.iterations,
        best,
        summary["best_step"],
        bool(summary["stopped_by_signal"]),
    )
    if summary["finished"]:
        run_dir.mark_done(
            "train", step=summary["step"], best_miou=best, best_step=summary["best_step"]
        )
        result.message = (
            f"trained {summary['step']} iterations; {best_text}; checkpoints in "
            f"{run_dir.path / 'checkpoints'}"
        )
        return result
    run_dir.mark("train", "stopped", step=summary["step"], iterations=config.iterations)
    result.message = (
        f"stopped at step {summary['step']} of {config.iterations} ({best_text}); continue "
        f"with: als4gan train --out {out} --resume"
    )
    return result


@releasing_folders()
def train(
    config: TrainConfig, out: str | Path, *, resume: bool = False, force: bool = False
) -> TrainResult:
    """Train a segmentation network into the run folder ``out``.

    Args:
        config: Every training option (build it with :func:`als4gan.config.build_config`, or
            :func:`resumed_config` to continue a run with a few allowed changes). Paths are
            made absolute when a run starts.
        out: Run folder: ``config.yaml``, ``metrics.jsonl``, ``checkpoints/{latest,best}.pt``.
        resume: Continue the interrupted run in ``out`` from ``checkpoints/latest.pt``.
        force: Start over, deleting a run already in ``out`` (and its evaluations).

    Returns:
        What happened (``state`` ``done``, ``stopped`` or ``skipped``) and the best validation.

    Raises:
        RunExistsError: If ``out`` holds a run and neither ``resume`` nor ``force`` is given.
        ConfigError: On an invalid option, or ``resume`` together with ``force``.
        DataError: If a resumed run would continue on other data.
        TrainingDivergedError: If the losses stop being finite (the stage is marked failed).
    """
    from als4gan import distributed
    from als4gan.errors import ConfigError
    from als4gan.io import RunDir
    from als4gan.runlock import claim_folder

    claim_folder(out)  # before reading its state: no other process may be writing it
    if resume and force:
        raise ConfigError("give --resume (continue) or --force (start over), not both")
    if not resume:
        config = absolute_paths(config)
    config.validate()
    run_dir = RunDir(out)
    if resume and run_dir.is_done("train"):
        return TrainResult(
            run_dir.path, "skipped", message=f"{out} already finished training; nothing to resume"
        )
    context = distributed.setup(config.device)
    try:
        return _train_in(run_dir, out, config, context, resume, force)
    finally:
        distributed.cleanup(context)


def _train_in(
    run_dir: RunDir, out: str | Path, config: TrainConfig, context: Any, resume: bool, force: bool
) -> TrainResult:
    """Prepare the run folder, build the trainer (resuming its state), record, fit, finish."""
    from als4gan import distributed
    from als4gan.train.trainer import LATEST, Trainer

    resumable = _prepare_run_dir(run_dir, resume, force, context.is_main)
    distributed.barrier(context)
    trainer = Trainer(config, str(out), context, resume=resumable)
    if resumable:
        trainer.load(run_dir.path / "checkpoints" / LATEST)
        if trainer.step >= config.iterations:
            done = f"{out} already finished training at step {trainer.step}"
            return TrainResult(
                run_dir.path,
                "skipped",
                trainer.step,
                config.iterations,
                message=done if context.is_main else "",
            )
    _check_same_data(  # every rank checks (so all stop together); rank 0 records
        run_dir,
        config,
        trainer.data_fingerprint,
        len(trainer.train_set),
        resumable,
        record=context.is_main,
    )
    if context.is_main:
        _record_start(run_dir, config, trainer, resumable)
    summary = _fit(run_dir, trainer, context.is_main)
    if not context.is_main:
        return TrainResult(run_dir.path, "done", summary["step"], config.iterations)
    return _finish(run_dir, out, config, summary)
