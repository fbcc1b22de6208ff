"""The acquisition model's training: seeded batches of the labelled set, one SGD loop.

Everything random (batch order, augmentation, dropout) is derived from the seed and the round,
so a resumed selection repeats exactly what an uninterrupted one does. Under ``torchrun`` only
rank 0 trains (docs/selection.md, "Several processes and nodes"); the other processes receive
its weights before scoring.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from als4gan.active.data import TrainingImages
from als4gan.errors import TrainingDivergedError
from als4gan.runtime import autocast, derive_seed, progress

if TYPE_CHECKING:
    from als4gan.active.acquisition import AcquisitionModel


def rng_devices(device: torch.device) -> list[int]:
    """CUDA devices whose random state :func:`torch.random.fork_rng` must save."""
    if device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


def merge_single_batches(batches: list[list[Any]]) -> list[list[Any]]:
    """Fold a trailing batch of one item into the previous batch (BatchNorm needs two)."""
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())
    return batches


def training_batches(
    count: int, epochs: int, batch_size: int, seed: int
) -> list[list[tuple[int, int]]]:
    """Shuffled ``(index, seed)`` batches for ``epochs`` epochs, drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    batches: list[list[tuple[int, int]]] = []
    for _ in range(epochs):
        order = torch.randperm(count, generator=generator).tolist()
        seeds = torch.randint(0, 2**62, (count,), generator=generator).tolist()
        keys = list(zip(order, seeds, strict=True))
        epoch = [keys[start : start + batch_size] for start in range(0, count, batch_size)]
        batches.extend(merge_single_batches(epoch))
    return batches


def _training_images(model: AcquisitionModel, labelled_ids: Sequence[str]) -> TrainingImages:
    low, high = (float(v) for v in model.config.scale_range)
    return TrainingImages(
        model.dataset,
        labelled_ids,
        model.config.image_size,
        scale_range=(low, high) if low != high else None,
        mirror=model.config.mirror,
        with_mask=model.with_mask,
        ignore_index=model.dataset.classes.ignore_index,
    )


def _step(
    model: AcquisitionModel,
    network: nn.Module,
    optimiser: torch.optim.Optimizer,
    batch: dict[str, Any],
    round_index: int,
) -> torch.Tensor | None:
    """One SGD step on ``batch``; its loss (``None``: the batch has no label, no step).

    Raises:
        TrainingDivergedError: If the loss is not finite.
    """
    batch["image"] = model.to_device(batch["image"])
    for key in ("label", "mask"):
        if key in batch:
            batch[key] = batch[key].to(model.device, non_blocking=True)
    with autocast(model.device, model.amp):
        loss = model.loss(network, batch)
    if loss is None:
        return None
    if not bool(torch.isfinite(loss)):
        raise TrainingDivergedError(
            f"the acquisition model's loss became {float(loss)} in round "
            f"{round_index}; lower --lr (now {model.config.lr})"
        )
    optimiser.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    optimiser.step()
    return loss


def _train(
    model: AcquisitionModel,
    network: nn.Module,
    loader: DataLoader[Any],
    steps: tuple[int, int],
    round_seed: int,
    round_index: int,
) -> list[float]:
    """Run every batch of ``loader``; the losses of the last epoch (``steps``: total, per epoch)."""
    total, steps_per_epoch = steps
    config = model.config
    optimiser = torch.optim.SGD(
        network.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    last_losses: list[float] = []
    network.train()
    with torch.random.fork_rng(devices=rng_devices(model.device)):
        torch.manual_seed(derive_seed(round_seed, "dropout"))
        bar = progress(loader, total=total, desc=f"round {round_index}: fit", unit="batch")
        for step, batch in enumerate(bar):
            loss = _step(model, network, optimiser, batch, round_index)
            if loss is not None and step >= total - steps_per_epoch:
                last_losses.append(float(loss.detach()))
    return last_losses


def fit_acquisition(
    model: AcquisitionModel, labelled_ids: Sequence[str], round_index: int, epochs: int
) -> dict[str, Any]:
    """Train ``model`` on ``labelled_ids`` for ``epochs`` epochs with a fresh SGD optimiser.

    Returns:
        ``{"epochs", "images", "steps", "loss", "seconds"}`` (loss = mean of the last epoch).

    Raises:
        TrainingDivergedError: If the loss becomes non-finite.
    """
    if model.network is None:
        model.reset()
    network = model.network
    assert network is not None
    start = time.perf_counter()
    data = _training_images(model, labelled_ids)
    round_seed = derive_seed(model.config.seed, "acquisition-train", round_index)
    batches = training_batches(len(data), epochs, model.config.batch_size, round_seed)
    if not batches:
        return {"epochs": epochs, "images": len(data), "steps": 0, "loss": None, "seconds": 0.0}
    loader = DataLoader(
        data,
        batch_sampler=batches,
        num_workers=model.num_workers,
        generator=torch.Generator().manual_seed(round_seed),
        pin_memory=model.device.type == "cuda",
    )
    steps = (len(batches), max(1, len(batches) // max(1, epochs)))
    last_losses = _train(model, network, loader, steps, round_seed, round_index)
    return {
        "epochs": epochs,
        "images": len(data),
        "steps": len(batches),
        "loss": float(np.mean(last_losses)) if last_losses else None,
        "seconds": time.perf_counter() - start,
    }
