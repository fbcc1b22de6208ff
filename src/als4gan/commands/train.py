"""``als4gan train``: train a segmentation network (s4GAN semi-supervised or supervised-only)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

HELP = "train a segmentation network (s4GAN semi-supervised or supervised-only)"
DESCRIPTION = """\
Train DeepLab with s4GAN (labelled + unlabelled images, stage 2 of docs/method.md) or the supervised
baseline (labelled images only). Defaults are the paper's (docs/method.md); the resolved options are
written to RUN_DIR/config.yaml, checkpoints to RUN_DIR/checkpoints/{latest,best}.pt and one
record per step to RUN_DIR/metrics.jsonl.

  als4gan train --root data/synthetic --selection runs/a/selection --out runs/a \\
      --backbone resnet18 --crop-size 96 --batch-size 4 --iterations 500 --val-every 100
  als4gan train --root data/synthetic --labeled-ratio 0.05 --seed 1 --method supervised \\
      --out runs/sup --backbone resnet18 --iterations 500
  als4gan train --out runs/a --resume                 # continue an interrupted run exactly
  torchrun --nproc_per_node 4 -m als4gan train ...     # several GPUs (DDP)

With no --selection or --labeled-ratio, RUN_DIR/selection/labeled.txt (written by
'als4gan select --out RUN_DIR') is used. No weights are downloaded: for real work pass
ImageNet weights with --pretrained FILE (see docs/training.md).
"""

logger = logging.getLogger("als4gan.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset flags, every TrainConfig option (grouped), and run-folder flags."""
    from als4gan.commands.common import add_dataset_arguments
    from als4gan.config import add_config_arguments
    from als4gan.train.config import GROUPS, TrainConfig

    add_dataset_arguments(parser, split_default="train")
    # None = "not given", so that --config and a resumed run's config.yaml can supply them.
    parser.set_defaults(dataset=None, split=None)
    run = parser.add_argument_group("run folder")
    run.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in RUN_DIR from checkpoints/latest.pt",
    )
    run.add_argument(
        "--force", action="store_true", help="start over, replacing a run already in RUN_DIR"
    )
    run.add_argument(
        "--config", metavar="FILE", help="YAML of options (e.g. another run's config.yaml)"
    )
    names = [field.name for field in dataclasses.fields(TrainConfig)]
    for title, group in GROUPS.items():
        add_config_arguments(
            parser, TrainConfig, exclude=[n for n in names if n not in group], title=title
        )


def _explicit_values(args: argparse.Namespace) -> dict[str, Any]:
    """Options given on the command line (config fields and the dataset flags)."""
    from als4gan.train.config import DATASET_FIELDS, TrainConfig

    names = {field.name for field in dataclasses.fields(TrainConfig)}
    values = {key: value for key, value in vars(args).items() if key in names}
    for key in DATASET_FIELDS:
        if getattr(args, key, None) is None:
            values.pop(key, None)
    return values


def _resolve(args: argparse.Namespace) -> Any:
    """The config of this invocation (a resumed run: its saved config plus allowed changes)."""
    from als4gan.config import config_from_dict, resolve_config
    from als4gan.errors import ConfigError, RunExistsError
    from als4gan.io import read_yaml
    from als4gan.train.config import RESUMABLE_OVERRIDES, TrainConfig

    explicit = _explicit_values(args)
    if not args.resume:
        config = resolve_config(TrainConfig, argparse.Namespace(**explicit), args.config)
        # Absolute paths, so that later stages and --resume work from any directory.
        for key in ("root", "selection", "classes_file"):
            value = getattr(config, key)
            if value:
                setattr(config, key, str(Path(value).expanduser().resolve()))
        return config
    if args.force:
        raise ConfigError("give --resume (continue) or --force (start over), not both")
    if args.config:
        raise ConfigError("--resume reads RUN_DIR/config.yaml; --config cannot be combined with it")
    saved_path = Path(args.out) / "config.yaml"
    if not saved_path.is_file():
        raise RunExistsError(
            f"{args.out} holds no training run to resume (no config.yaml); start one without "
            "--resume"
        )
    saved_data = read_yaml(saved_path)
    if not isinstance(saved_data, dict) or not saved_path.read_bytes().endswith(b"\n"):
        raise ConfigError(
            f"{saved_path} is incomplete (truncated?), so the run cannot be resumed exactly. "
            "Start over with --force (same options), or restore the file."
        )
    saved = config_from_dict(TrainConfig, saved_data, source=str(saved_path))
    changes: dict[str, Any] = {}
    for key, value in explicit.items():
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
        changes[key] = value
    return dataclasses.replace(saved, **changes)


def _prepare_run_dir(args: argparse.Namespace, main: bool) -> bool:
    """Check (all processes) and prepare (main process) the run folder.

    Returns:
        Whether a checkpoint to resume from exists.

    Raises:
        RunExistsError: Instead of overwriting a finished or unfinished run without --force.
    """
    from als4gan.checkpoint import CHECKPOINT_DIR
    from als4gan.errors import RunExistsError
    from als4gan.io import RunDir
    from als4gan.train.records import METRICS_FILE
    from als4gan.train.trainer import LATEST

    run_dir = RunDir(args.out)
    latest = run_dir.path / CHECKPOINT_DIR / LATEST
    if args.resume:
        return latest.is_file()
    run_dir.check_can_start("train", args.force)
    started = latest.is_file() or (run_dir.path / METRICS_FILE).is_file()
    if started and not args.force:
        raise RunExistsError(
            f"{run_dir.path} holds an unfinished training run. Continue it with --resume, or "
            "pass --force to start over (its checkpoints and metrics are deleted)."
        )
    if main and args.force:
        clear_training(run_dir)
    return False


#: Files of a training run in RUN_DIR besides checkpoints/ (all rewritten by a new run).
TRAINING_FILES = (
    "config.yaml",
    "metrics.jsonl",
    "train_labeled.txt",
    "train_unlabeled.txt",
    "dataset_fingerprint.json",
)


def clear_training(run_dir: Any) -> None:
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


def clear_evaluations(run_dir: Any) -> None:
    """Delete the evaluations (RUN_DIR/eval/) and the report of ``run_dir``'s model."""
    from als4gan.commands.report import is_previous_report

    shutil.rmtree(run_dir.path / "eval", ignore_errors=True)
    report = run_dir.path / "report.html"
    if report.is_file() and is_previous_report(report):
        report.unlink()
    run_dir.forget("evaluate:*")


#: File in RUN_DIR recording which data a training run reads.
FINGERPRINT_FILE = "dataset_fingerprint.json"


def _check_same_data(
    run_dir: Any, config: Any, fingerprint: str, samples: int, resuming: bool, record: bool
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


def run(args: argparse.Namespace) -> int:
    """Resolve the config, prepare RUN_DIR, train, and report."""
    from als4gan.config import config_to_dict
    from als4gan.errors import TrainingDivergedError
    from als4gan.io import RunDir, write_ids, write_yaml
    from als4gan.runlock import claim_folder
    from als4gan.train import distributed
    from als4gan.train.trainer import LABELLED_FILE, LATEST, UNLABELLED_FILE, Trainer

    claim_folder(args.out)  # before reading its state: no other process may be writing it
    config = _resolve(args)
    config.validate()
    run_dir = RunDir(args.out)
    if args.resume and run_dir.is_done("train"):
        print(f"{args.out} already finished training; nothing to resume")
        return 0
    context = distributed.setup(config.device)
    try:
        resumable = _prepare_run_dir(args, context.is_main)
        distributed.barrier(context)
        trainer = Trainer(config, args.out, context, resume=resumable)
        if resumable:
            trainer.load(run_dir.path / "checkpoints" / LATEST)
            if trainer.step >= config.iterations:
                if context.is_main:
                    print(f"{args.out} already finished training at step {trainer.step}")
                return 0
        _check_same_data(  # every rank checks (so all stop together); rank 0 records
            run_dir,
            config,
            trainer.data_fingerprint,
            len(trainer.train_set),
            resumable,
            record=context.is_main,
        )
        if context.is_main:
            # --stop-after is for this invocation only; a resumed run or a copy runs to the end.
            # The validation window is written resolved (the crop size when not given): it is
            # the regime 'als4gan evaluate' repeats on the test split.
            recorded = dataclasses.replace(
                config,
                stop_after=None,
                val_window=trainer.regime.window or 0,
            )
            write_yaml(run_dir / "config.yaml", config_to_dict(recorded))
            write_ids(run_dir / LABELLED_FILE, trainer.split.labelled)
            write_ids(run_dir / UNLABELLED_FILE, trainer.split.unlabelled)
            run_dir.mark_running("train", step=trainer.step, iterations=config.iterations)
            logger.info(trainer.describe())
            if resumable:
                logger.info("resuming from step %d", trainer.step)
        try:
            summary = trainer.fit()
        except TrainingDivergedError as err:
            if context.is_main:
                run_dir.mark("train", "failed", step=trainer.step, error=str(err))
            raise
        except Exception as err:  # disk full, unreadable file...: never leave "running"
            if context.is_main:
                run_dir.mark_failed("train", err)
            raise
        if not context.is_main:
            return 0
        best = summary["best_miou"]
        best_text = (
            f"best validation mIoU {best:.4f} at step {summary['best_step']}"
            if best is not None
            else "no validation"
        )
        if summary["finished"]:
            run_dir.mark_done(
                "train",
                step=summary["step"],
                best_miou=best,
                best_step=summary["best_step"],
            )
            print(
                f"trained {summary['step']} iterations; {best_text}; checkpoints in "
                f"{run_dir.path / 'checkpoints'}"
            )
            return 0
        run_dir.mark("train", "stopped", step=summary["step"], iterations=config.iterations)
        print(
            f"stopped at step {summary['step']} of {config.iterations} ({best_text}); continue "
            f"with: als4gan train --out {args.out} --resume"
        )
        return 130 if summary["stopped_by_signal"] else 0
    finally:
        distributed.cleanup(context)
