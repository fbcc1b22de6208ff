"""The evaluation stage: score a checkpoint on a split into RUN_DIR/eval/<split>/.

:func:`evaluate` claims the folder, refuses to redo a finished evaluation without ``force``,
marks ``evaluate:<split>`` running/done/failed in ``status.json`` and returns the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from als4gan.config import option
from als4gan.stages import releasing_folders

if TYPE_CHECKING:
    from als4gan.io import RunDir

log = logging.getLogger("als4gan.commands.evaluate")


@dataclass
class EvaluateConfig:
    """Options of ``als4gan evaluate``."""

    split: str = option("test", "split to score: name under ROOT/splits, a .txt id list, or all")
    window: int | None = option(
        None,
        "sliding-window side in pixels; 0 = whole images; none = as validation in training "
        "(recorded in the checkpoint; else the training crop)",
        metavar="PX",
    )
    overlap: float | None = option(
        None,
        "overlap fraction between neighbouring windows; none = as validation in training (1/3)",
    )
    batch_size: int = option(4, "windows (or same-sized images) per forward pass")
    device: str = option("auto", "torch device: auto, cpu, cuda, cuda:N, mps")
    amp: str = option(
        "auto", "bf16 autocast: auto (only where fast), bf16, off", choices=("auto", "bf16", "off")
    )
    crf: bool = option(False, "DenseCRF post-processing (needs: pip install 'als4gan[crf]')")
    crf_iterations: int = option(5, "mean-field iterations of the CRF")
    all_checkpoints: bool = option(
        False, "score every RUN_DIR/checkpoints/*.pt on --val-split, evaluate the best on --split"
    )
    val_split: str = option("val", "split used to choose the checkpoint with --all-checkpoints")
    workers: int = option(0, "image-reading worker processes")

    def validate(self) -> None:
        """Check values the types cannot.

        Raises:
            ConfigError: For an overlap outside [0, 1) or a batch size below 1.
        """
        from als4gan.errors import ConfigError

        if self.overlap is not None and not 0 <= self.overlap < 1:
            raise ConfigError(f"--overlap must lie in [0, 1), got {self.overlap}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1, got {self.batch_size}")

    @property
    def split_name(self) -> str:
        """Folder name of the split's evaluation (a ``.txt`` list: its stem)."""
        return Path(self.split).stem if self.split.endswith(".txt") else self.split


@dataclass
class EvaluateResult:
    """An evaluation: the metrics (as in ``metrics.json``) and where they were written."""

    metrics: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)
    split: str = "test"

    @property
    def miou(self) -> float | None:
        """Mean IoU over the classes (``None`` when no class occurs)."""
        value = self.metrics.get("miou")
        return None if value is None else float(value)

    @property
    def message(self) -> str:
        """The line ``als4gan evaluate`` prints."""
        result = self.metrics
        return (
            f"{self.split}: mIoU {100 * (result['miou'] or 0):.2f} %, pixel accuracy "
            f"{100 * (result['pixel_accuracy'] or 0):.2f} % ({result['dataset']['num_images']} "
            f"images; {regime_text(result)}) -> {self.paths['json']}"
        )


def regime_text(result: Mapping[str, Any]) -> str:
    """How the images were segmented, e.g. ``128 px windows, overlap 0.33, as in validation``."""
    window, overlap = result.get("window"), result.get("overlap")
    text = f"{window} px windows, overlap {overlap:.2f}" if window else "whole images"
    source = {
        "recorded": "as in validation",
        "override": "overriding validation's regime",
        "explicit": "as given",
    }
    return f"{text}, {source.get(result.get('regime', ''), 'default')}"


def _settings(config: EvaluateConfig) -> Any:
    """Inference settings (device, precision, CRF) of ``config``."""
    from als4gan.errors import ConfigError
    from als4gan.evaluate import EvalSettings
    from als4gan.regime import DEFAULT_OVERLAP
    from als4gan.runtime import resolve_amp, resolve_device, use_channels_last

    device = resolve_device(config.device)
    settings = EvalSettings(
        overlap=DEFAULT_OVERLAP if config.overlap is None else config.overlap,
        batch_size=config.batch_size,
        device=device,
        amp=resolve_amp(config.amp, device),
        channels_last=use_channels_last("auto", device),
        crf=config.crf,
        crf_iterations=config.crf_iterations,
        num_workers=config.workers,
    )
    if config.crf:
        from als4gan.inference import crf_available

        if not crf_available():
            raise ConfigError(
                "--crf needs the optional package pydensecrf2: pip install 'als4gan[crf]' "
                "(it compiles from source, about a minute)"
            )
    return settings


def _choose_checkpoint(
    run_dir: Path, out_dir: Path, source: Any, config: EvaluateConfig, settings: Any
) -> tuple[Path, list[dict[str, Any]]]:
    """``--all-checkpoints``: score every checkpoint on the validation split, keep the best."""
    from als4gan.evaluate import list_run_checkpoints, select_checkpoint, selection_markdown
    from als4gan.io import atomic_write_text, write_json

    if config.val_split == config.split:
        log.warning(
            "--val-split equals --split (%s): choosing and reporting on the same "
            "split gives optimistic numbers",
            config.split,
        )
    checkpoints = list_run_checkpoints(run_dir)
    checkpoint, records = select_checkpoint(
        checkpoints, source, config.val_split, settings, config.window, config.overlap
    )
    selection: dict[str, Any] = {"split": config.val_split, "checkpoints": records}
    best = next(r for r in records if Path(r["checkpoint"]) == checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        out_dir / "checkpoint_selection.json",
        {**selection, "chosen": str(checkpoint), "miou": best["miou"]},
    )
    atomic_write_text(
        out_dir / "checkpoint_selection.md",
        selection_markdown(records, config.val_split, checkpoint),
    )
    log.info(
        "best checkpoint on '%s': %s (mIoU %.2f %%)",
        config.val_split,
        checkpoint,
        100 * float(best["miou"] or 0.0),
    )
    return checkpoint, records


def _score(
    checkpoint: Path,
    run_dir: Path,
    out_dir: Path,
    source: Any,
    config: EvaluateConfig,
    settings: Any,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate (choosing the checkpoint first with ``all_checkpoints``) and write the files."""
    from als4gan.evaluate import evaluate_checkpoint, write_evaluation

    records: list[dict[str, Any]] = []
    if config.all_checkpoints:
        checkpoint, records = _choose_checkpoint(run_dir, out_dir, source, config, settings)
    result = evaluate_checkpoint(
        checkpoint, source, config.split, settings, config.window, config.overlap
    )
    if records:
        chosen = next(r for r in records if r["checkpoint"] == str(checkpoint))
        result["selected_on"] = {
            "split": config.val_split,
            "miou": chosen["miou"],
            "candidates": len(records),
        }
    return result, write_evaluation(out_dir, result)


@releasing_folders()
def evaluate(
    checkpoint: str | Path,
    config: EvaluateConfig | None = None,
    *,
    dataset: str | None = None,
    root: str | Path | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    force: bool = False,
) -> EvaluateResult:
    """Score a checkpoint on a split: mIoU, per-class IoU/F1, confusion matrix.

    Args:
        checkpoint: A checkpoint file, or a run folder (its ``checkpoints/best.pt``).
        config: Split, window, device, ... (default: :class:`EvaluateConfig`).
        dataset: Dataset format (default: the one recorded in the checkpoint).
        root: Dataset root (default: the recorded one).
        dataset_options: ``classes_file``, ``bands``, ``image_max`` (default: the recorded ones).
        out: Output folder (default: ``RUN_DIR/eval/<split>``).
        force: Redo a finished evaluation of this split.

    Returns:
        The metrics and the paths of ``metrics.json``/``metrics.md``.

    Raises:
        ConfigError: On an invalid option or a missing optional package (``crf``).
        RunExistsError: If the evaluation is finished and ``force`` is false.
        CheckpointError / DataError: For an unreadable checkpoint or data that does not match.
    """
    from als4gan.checkpoint import load_checkpoint
    from als4gan.evaluate import read_run_config, resolve_data_source

    config = config or EvaluateConfig()
    config.validate()
    path, run_dir, out_dir, state = _claim(Path(checkpoint), config, out, force)
    stage = f"evaluate:{config.split_name}"
    settings = _settings(config)  # a missing CRF package is reported before anything is read
    # Dataset defaults recorded at training time (the weights are loaded per evaluation).
    meta = load_checkpoint(path)
    root_text = None if root is None else str(root)
    source = resolve_data_source(
        dataset, root_text, dict(dataset_options or {}), meta, read_run_config(run_dir)
    )
    state.mark_running(stage, checkpoint=str(path))
    try:
        result, paths = _score(path, run_dir, out_dir, source, config, settings)
    except BaseException as err:
        state.mark_failed(stage, err)  # as far as the disk allows: the cause is raised below
        raise
    state.mark_done(stage, checkpoint=result["checkpoint"], miou=result["miou"])
    return EvaluateResult(result, paths, config.split)


def _claim(
    checkpoint: Path, config: EvaluateConfig, out: str | Path | None, force: bool
) -> tuple[Path, Path, Path, RunDir]:
    """The checkpoint file, run folder, output folder and claimed state of an evaluation.

    Raises:
        ConfigError: For ``all_checkpoints`` without a run folder.
        RunExistsError: If the evaluation is finished and ``force`` is false.
    """
    from als4gan.checkpoint import resolve_checkpoint_path
    from als4gan.errors import ConfigError
    from als4gan.evaluate import run_dir_of
    from als4gan.io import RunDir
    from als4gan.runlock import claim_folder

    if config.all_checkpoints and not checkpoint.is_dir():
        raise ConfigError(
            f"--all-checkpoints needs a run folder, but {checkpoint} is not a folder "
            "(pass RUN_DIR, not RUN_DIR/checkpoints/x.pt)"
        )
    path = resolve_checkpoint_path(checkpoint)
    run_dir = run_dir_of(checkpoint)
    out_dir = Path(out) if out else run_dir / "eval" / config.split_name
    claim_folder(out_dir if out else run_dir)  # one writer; an --out file is refused
    state = RunDir(out_dir if out else run_dir)
    state.check_can_start(f"evaluate:{config.split_name}", force)
    return path, run_dir, out_dir, state
