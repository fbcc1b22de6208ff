"""Builders of checkpoints and run folders that follow the run-folder contract, for tests.

They stand in for ``als4gan select`` / ``als4gan train`` so that evaluation, prediction and
reports can be tested without training: networks are randomly initialised from a given seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from als4gan.checkpoint import save_checkpoint
from als4gan.data import build_dataset
from als4gan.io import append_jsonl, write_ids, write_json, write_yaml


def make_checkpoint(
    path: Path,
    root: Path,
    *,
    step: int = 10,
    seed: int = 0,
    crop_size: int = 48,
    num_classes: int = 6,
    in_channels: int = 3,
    config: dict[str, Any] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write an als4gan checkpoint of a DeepLab-v2 ResNet-18 (random weights from ``seed``)."""
    from als4gan.models import build_segmentation_model

    spec = {
        "arch": "deeplabv2",
        "backbone": "resnet18",
        "num_classes": num_classes,
        "in_channels": in_channels,
        "output_stride": 16,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_segmentation_model(**spec)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    dataset = build_dataset("synthetic", root, "train")
    resolved = {
        "dataset": "synthetic",
        "root": str(root),
        "method": "s4gan",
        "backbone": "resnet18",
        "crop_size": crop_size,
        "iterations": 100,
        "seed": seed,
        **(config or {}),
    }
    save_checkpoint(
        path,
        {
            "kind": "segmentation",
            "model_spec": spec,
            "dataset": dataset.describe(),
            "model": model.state_dict(),
            "step": step,
            "config": resolved,
        },
    )
    return path


def make_run(
    run_dir: Path,
    root: Path,
    *,
    seed: int = 0,
    steps: Sequence[int] = (20, 40),
    best_step: int | None = None,
    selection: bool = True,
    method: str = "s4gan",
    crop_size: int = 48,
    extra_config: dict[str, Any] | None = None,
) -> Path:
    """A run folder: config.yaml, metrics.jsonl, checkpoints/, and optionally selection/.

    Checkpoints ``step_<N>.pt`` are written for every step, ``latest.pt`` for the last one
    and ``best.pt`` for ``best_step`` (default: the last step). Training curves are smooth,
    seed-dependent fakes.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "dataset": "synthetic",
        "root": str(root),
        "method": method,
        "backbone": "resnet18",
        "crop_size": crop_size,
        "iterations": max(steps),
        "batch_size": 2,
        "labeled_ratio": 0.2,
        "seed": seed,
        **(extra_config or {}),
    }
    write_yaml(run_dir / "config.yaml", config)
    rng = np.random.default_rng(seed)
    metrics = run_dir / "metrics.jsonl"
    metrics.unlink(missing_ok=True)
    last = max(steps)
    for step in range(1, last + 1):
        decay = math.exp(-step / (last / 3))
        record: dict[str, Any] = {
            "kind": "train",
            "step": step,
            "loss_ce": 1.6 * decay + 0.2 + 0.05 * rng.random(),
            "lr_g": 2.5e-4 * (1 - step / (last + 1)) ** 0.9,
            "time": 0.1 * step,
        }
        if method == "s4gan":
            record.update(
                {
                    "loss_fm": 0.3 * decay + 0.02 * rng.random(),
                    "loss_st": 0.4 * (1 - decay) + 0.05 * rng.random(),
                    "loss_d": 0.69 - 0.2 * (1 - decay) + 0.03 * rng.random(),
                    "accept_rate": min(1.0, 0.8 * (1 - decay)),
                    "d_real_mean": 0.6 + 0.2 * (1 - decay),
                    "d_fake_mean": 0.5 - 0.2 * (1 - decay) + 0.02 * rng.random(),
                    "d_above_0.5": min(1.0, 0.8 * (1 - decay) + 0.15),
                    "d_above_0.6": min(1.0, 0.8 * (1 - decay) + 0.1),
                    "d_above_0.7": min(1.0, 0.8 * (1 - decay) + 0.05),
                    "d_above_tau": min(1.0, 0.8 * (1 - decay)),
                    "lr_d": 1e-4,
                }
            )
        append_jsonl(metrics, record)
        if step in steps:
            miou = 0.3 + 0.3 * (1 - decay) + 0.02 * rng.random()
            append_jsonl(
                metrics,
                {
                    "kind": "val",
                    "step": step,
                    "miou": miou,
                    "pixel_accuracy": miou + 0.2,
                    "per_class_iou": [miou + 0.1 * (c - 2.5) / 2.5 for c in range(6)],
                },
            )
    checkpoints = run_dir / "checkpoints"
    for index, step in enumerate(steps):
        make_checkpoint(
            checkpoints / f"step_{step:06d}.pt",
            root,
            step=step,
            seed=1000 * seed + index,
            crop_size=crop_size,
            config=config,
        )
    best = best_step if best_step is not None else last
    (checkpoints / "best.pt").write_bytes((checkpoints / f"step_{best:06d}.pt").read_bytes())
    (checkpoints / "latest.pt").write_bytes((checkpoints / f"step_{last:06d}.pt").read_bytes())
    train_ids = build_dataset("synthetic", root, "train").ids
    if not selection:  # what 'als4gan train --labeled-ratio' records
        write_ids(run_dir / "train_labeled.txt", train_ids[-3:])
    if selection:
        chosen = train_ids[:4]
        write_ids(run_dir / "selection" / "labeled.txt", chosen)
        write_ids(run_dir / "selection" / "unlabeled.txt", train_ids[4:])
        write_json(
            run_dir / "selection" / "selection.json",
            {"strategy": "entropy", "budget": len(chosen), "seed": seed, "rounds": 2},
        )
    return run_dir
