"""What a training run's checkpoints hold, and how ``--resume`` puts a trainer back exactly.

``best.pt`` and ``step_<K>.pt`` hold the network and how to rebuild it (:func:`model_payload`);
``latest.pt`` adds everything to continue exactly (:func:`full_payload`): D, both optimisers and
schedules, the data streams' positions, the method's state and every process's RNG state.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from als4gan.checkpoint import load_checkpoint, preprocessing_record
from als4gan.config import config_to_dict
from als4gan.errors import CheckpointError
from als4gan.runtime import derive_seed
from als4gan.train.state import restore_rng_state

if TYPE_CHECKING:
    from als4gan.train.trainer import Trainer

LATEST = "latest.pt"
BEST = "best.pt"
#: Name of the per-step network kept with ``--keep-checkpoints``.
STEP_CHECKPOINT = "step_{step:07d}.pt"


def model_payload(trainer: Trainer) -> dict[str, Any]:
    """What ``best.pt`` holds: the network and how to rebuild it (no trainer state)."""
    return {
        "kind": "segmentation",
        "model_spec": dict(trainer.model_spec),
        "dataset": trainer.train_set.describe(),
        "preprocessing": preprocessing_record(
            trainer.train_set.preprocessing(), int(trainer.model_spec.get("in_channels", 3))
        ),
        "model": trainer.generator.state_dict(),
        "step": trainer.step,
        "config": config_to_dict(trainer.config),
        "metrics": trainer.last_val,
        "inference": trainer.regime.to_dict(),
        "method": trainer.config.method,
        "labelled": {"source": trainer.split.source, "count": len(trainer.split.labelled)},
        "pretrained_weights": (
            trainer.pretrained_load.record() if trainer.pretrained_load is not None else None
        ),
    }


def full_payload(trainer: Trainer, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``latest.pt`` holds: :func:`model_payload` plus everything to resume exactly."""
    payload = model_payload(trainer)
    discriminator, optimizer_d = trainer.discriminator, trainer.optimizer_d
    payload["trainer"] = {
        "discriminator": discriminator.state_dict() if discriminator is not None else None,
        "optimizer_g": trainer.optimizer_g.state_dict(),
        "optimizer_d": optimizer_d.state_dict() if optimizer_d else None,
        "scheduler_g": trainer.scheduler_g.state_dict(),
        "scheduler_d": trainer.scheduler_d.state_dict() if trainer.scheduler_d else None,
        "streams": {name: data.state_dict() for name, data in trainer.streams.items()},
        "method": trainer.method.state_dict(),
        "rng": rng_states,
        "world_size": trainer.context.world_size,
        "best_miou": trainer.best_miou if math.isfinite(trainer.best_miou) else None,
        "best_step": trainer.best_step,
        "elapsed": trainer.elapsed_seconds(),
    }
    return payload


def restore(trainer: Trainer, path: str | Path) -> None:
    """Continue ``trainer`` from a ``latest.pt`` written by :func:`full_payload`.

    Raises:
        CheckpointError: If the file cannot be read or does not fit this run.
    """
    checkpoint = load_checkpoint(path)
    state = checkpoint.get("trainer")
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} holds no trainer state (a best.pt?); resume from checkpoints/{LATEST}"
        )
    if checkpoint.get("model_spec") != trainer.model_spec:
        raise CheckpointError(
            f"{path} holds a {checkpoint.get('model_spec')} network but this run builds "
            f"{trainer.model_spec}"
        )
    _restore_networks(trainer, checkpoint, state, path)
    _restore_progress(trainer, checkpoint, state, path)


def _restore_networks(
    trainer: Trainer, checkpoint: dict[str, Any], state: dict[str, Any], path: str | Path
) -> None:
    """G, D, the optimisers and their schedules."""
    trainer.generator.load_state_dict(checkpoint["model"])
    if trainer.discriminator is not None:
        if state.get("discriminator") is None:
            raise CheckpointError(f"{path} is a supervised run; it cannot resume as s4GAN")
        trainer.discriminator.load_state_dict(state["discriminator"])
    trainer.optimizer_g.load_state_dict(state["optimizer_g"])
    trainer.scheduler_g.load_state_dict(state["scheduler_g"])
    if trainer.optimizer_d is not None and trainer.scheduler_d is not None:
        trainer.optimizer_d.load_state_dict(state["optimizer_d"])
        trainer.scheduler_d.load_state_dict(state["scheduler_d"])


def _restore_progress(
    trainer: Trainer, checkpoint: dict[str, Any], state: dict[str, Any], path: str | Path
) -> None:
    """Data positions, the method's state, RNG streams, the step, best score and clock."""
    missing = sorted(set(trainer.streams) - set(state["streams"]))
    if missing:
        raise CheckpointError(
            f"{path} was written by another method (no '{missing[0]}' data stream); "
            f"resume it with its own --method, or start this one with --force"
        )
    for name, data_stream in trainer.streams.items():
        data_stream.load_state_dict(state["streams"][name])
    trainer.method.load_state_dict(state.get("method") or {})
    context = trainer.context
    states = state.get("rng") or []
    if len(states) == context.world_size:
        restore_rng_state(states[context.rank])
    else:  # another number of processes: fresh, still seeded, dropout streams
        torch.manual_seed(derive_seed(trainer.config.seed, "train", context.rank, "resumed"))
    trainer.step = int(checkpoint["step"])
    best = state.get("best_miou")
    trainer.best_miou = float(best) if best is not None else -math.inf
    trainer.best_step = state.get("best_step")
    trainer.last_val = checkpoint.get("metrics")
    trainer.elapsed = float(state.get("elapsed", 0.0))
    trainer._clock_start = time.perf_counter()
