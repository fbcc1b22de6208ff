"""``als4gan evaluate``: score a checkpoint on a split (mIoU, per-class IoU/F1, confusion)."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from als4gan.config import add_config_arguments, option, resolve_config

HELP = "score a checkpoint on a split (mIoU, per-class IoU/F1, confusion matrix)"
DESCRIPTION = """\
Score a trained checkpoint on a dataset split. Metrics come from one confusion matrix over the
whole split at label resolution: pixel accuracy, mean class accuracy, mIoU, frequency-weighted
IoU, per-class IoU and F1 (the ignore label is skipped). Images larger than the window are
predicted with overlapping sliding windows whose overlaps are blended.

Writes RUN_DIR/eval/<split>/metrics.json, metrics.md and confusion_matrix.png (or into --out).
Dataset options default to those recorded in the checkpoint / run folder.

Images are segmented the way validation did during training (the window and overlap recorded
in the checkpoint: whole images with 'train --val-window 0', else sliding windows of the
validation window, by default the training crop), so the test split is scored the way best.pt
was chosen. --window / --overlap override that, with a warning.

--all-checkpoints scores every RUN_DIR/checkpoints/*.pt on the validation split, keeps the best
one there and evaluates only that one on --split (the test split is never used for choosing).

examples:
  als4gan evaluate --checkpoint runs/s4gan --split test
  als4gan evaluate --checkpoint runs/s4gan/checkpoints/best.pt --dataset synthetic \\
      --root data/synthetic --split test --out eval/s4gan
  als4gan evaluate --checkpoint runs/s4gan --all-checkpoints --split test
"""

log = logging.getLogger(__name__)


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``evaluate``."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="CKPT",
        help="checkpoint file, or a run folder (uses RUN_DIR/checkpoints/best.pt)",
    )
    data = parser.add_argument_group("dataset (default: as recorded in the checkpoint)")
    from als4gan.commands.common import DATASET_NAMES

    data.add_argument("--dataset", default=None, choices=DATASET_NAMES, help="dataset format")
    data.add_argument("--root", default=None, help="dataset root folder")
    data.add_argument("--classes-file", default=None, help="folder datasets: YAML/JSON class table")
    from als4gan.argtypes import image_max_arg

    data.add_argument(
        "--bands",
        type=int,
        nargs="+",
        default=None,
        help="folder datasets: 1-based bands (default and only accepted value: the recorded ones)",
    )
    data.add_argument(
        "--image-max",
        type=image_max_arg,
        default=None,
        help=(
            "folder datasets: pixel value that maps to 1.0 (default and only accepted value: "
            "the one recorded in the checkpoint)"
        ),
    )
    add_config_arguments(parser, EvaluateConfig, title="evaluation")
    parser.add_argument("--config", default=None, help="YAML file with evaluation options")
    parser.add_argument("--out", default=None, help="output folder (default: RUN_DIR/eval/<split>)")
    parser.add_argument(
        "--force", action="store_true", help="overwrite a finished evaluation of this split"
    )


def regime_text(result: dict[str, Any]) -> str:
    """How the images were segmented, e.g. ``128 px windows, overlap 0.33, as in validation``."""
    window, overlap = result.get("window"), result.get("overlap")
    text = f"{window} px windows, overlap {overlap:.2f}" if window else "whole images"
    source = {
        "recorded": "as in validation",
        "override": "overriding validation's regime",
        "explicit": "as given",
    }
    return f"{text}, {source.get(result.get('regime', ''), 'default')}"


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the metrics files."""
    from als4gan.commands.common import dataset_options
    from als4gan.errors import ConfigError
    from als4gan.evaluate import (
        EvalSettings,
        evaluate_checkpoint,
        list_run_checkpoints,
        read_run_config,
        resolve_data_source,
        run_dir_of,
        select_checkpoint,
        selection_markdown,
        write_evaluation,
    )
    from als4gan.io import RunDir, atomic_write_text, write_json
    from als4gan.regime import DEFAULT_OVERLAP
    from als4gan.runtime import resolve_amp, resolve_device, use_channels_last

    config = resolve_config(EvaluateConfig, args, args.config)
    if config.overlap is not None and not 0 <= config.overlap < 1:
        raise ConfigError(f"--overlap must lie in [0, 1), got {config.overlap}")
    if config.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {config.batch_size}")
    from als4gan.checkpoint import load_checkpoint, resolve_checkpoint_path

    checkpoint_arg = Path(args.checkpoint)
    if config.all_checkpoints and not checkpoint_arg.is_dir():
        raise ConfigError(
            f"--all-checkpoints needs a run folder, but {checkpoint_arg} is not a folder "
            "(pass RUN_DIR, not RUN_DIR/checkpoints/x.pt)"
        )
    checkpoint = resolve_checkpoint_path(checkpoint_arg)
    run_dir = run_dir_of(checkpoint_arg)
    split_name = Path(config.split).stem if config.split.endswith(".txt") else config.split
    out_dir = Path(args.out) if args.out else run_dir / "eval" / split_name
    from als4gan.runlock import claim_folder

    claim_folder(out_dir if args.out else run_dir)  # one writer; an --out file is refused
    state = RunDir(out_dir if args.out else run_dir)
    stage = f"evaluate:{split_name}"
    state.check_can_start(stage, args.force)

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
    # Dataset defaults recorded at training time (the weights are loaded per evaluation).
    meta = load_checkpoint(checkpoint)
    source = resolve_data_source(
        args.dataset, args.root, dataset_options(args), meta, read_run_config(run_dir)
    )
    state.mark_running(stage, checkpoint=str(checkpoint))
    try:
        records: list[dict[str, Any]] = []
        if config.all_checkpoints:
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
        paths = write_evaluation(out_dir, result)
    except BaseException as err:
        state.mark_failed(stage, err)  # as far as the disk allows: the cause is raised below
        raise
    state.mark_done(stage, checkpoint=result["checkpoint"], miou=result["miou"])
    print(
        f"{config.split}: mIoU {100 * (result['miou'] or 0):.2f} %, pixel accuracy "
        f"{100 * (result['pixel_accuracy'] or 0):.2f} % ({result['dataset']['num_images']} "
        f"images; {regime_text(result)}) -> {paths['json']}"
    )
    return 0
