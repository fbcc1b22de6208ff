"""Streaming pool scoring: the acquisition network over some ids, batch by batch.

Only per-image scores (and embeddings when a diversity strategy asks for them) are kept, never
images. The ids are cut into batches of ``--score-batch-size`` in order; a :class:`Shard`
scores a contiguous run of those batches, so several processes (``torchrun``) together score
exactly the batches one process would, each image in the same batch as in a single process,
and the Monte-Carlo dropout masks come from the same stream: a shard first draws, and drops,
the masks of the batches before its own. Concatenating the shards' rows in rank order gives a
single process's outputs bit for bit (docs/selection.md, "Several processes and nodes").
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from als4gan.runtime import autocast, derive_seed, progress

if TYPE_CHECKING:
    from als4gan.active.acquisition import AcquisitionModel


@dataclass
class PoolOutputs:
    """What one pass over some pool images produced (rows in the order of the ids given).

    Attributes:
        scores: ``(N,)`` float64 strategy scores, or ``None`` when not asked for.
        embeddings: ``(N, D)`` float16 embeddings, or ``None`` when not asked for.
        accuracy: Share of images whose predicted image label matches the true one (only
            when labels were read), else ``None``.
        seconds: Wall time of the pass.
        counts: ``(correct, with a label)`` behind ``accuracy`` (to merge shards).
    """

    scores: np.ndarray | None
    embeddings: np.ndarray | None
    accuracy: float | None
    seconds: float
    counts: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Shard:
    """This process's share of a scoring pass: a contiguous run of the batches.

    Attributes:
        rank: This process's rank.
        world_size: Number of processes sharing the pass.
    """

    rank: int = 0
    world_size: int = 1

    def batch_range(self, batches: int) -> tuple[int, int]:
        """``[first, end)``: the batches of ``batches`` that this shard scores."""
        return (
            batches * self.rank // self.world_size,
            batches * (self.rank + 1) // self.world_size,
        )


class _Rows:
    """Fills per-row outputs batch by batch (embeddings allocated at the first batch)."""

    def __init__(self, count: int, with_scores: bool, with_embeddings: bool) -> None:
        self.count = count
        self.scores = np.empty(count, dtype=np.float64) if with_scores else None
        self.with_embeddings = with_embeddings
        self.embeddings: np.ndarray | None = None
        self.correct = 0
        self.labelled = 0

    def add(
        self,
        batch: dict[str, Any],
        outputs: dict[str, torch.Tensor],
        model: AcquisitionModel,
        mc: bool,
        with_labels: bool,
    ) -> None:
        positions = batch["position"].numpy()
        if self.scores is not None:
            probs = outputs["mc_probs"] if mc else outputs["probs"]
            self.scores[positions] = model.strategy.score(probs.float().cpu())
        if self.with_embeddings:
            vectors = outputs["embeddings"].float().cpu().numpy().astype(np.float16)
            if self.embeddings is None:
                self.embeddings = np.empty((self.count, vectors.shape[1]), dtype=np.float16)
            self.embeddings[positions] = vectors
        if with_labels and "label" in batch and outputs["probs"].ndim == 2:
            labels = batch["label"].numpy()
            predicted = outputs["probs"].argmax(dim=1).cpu().numpy()
            valid = labels >= 0
            self.correct += int((predicted[valid] == labels[valid]).sum())
            self.labelled += int(valid.sum())

    def outputs(self, seconds: float) -> PoolOutputs:
        return PoolOutputs(
            scores=self.scores,
            embeddings=self.embeddings,
            accuracy=self.correct / self.labelled if self.labelled else None,
            seconds=seconds,
            counts=(self.correct, self.labelled),
        )


def _mc_generator(model: AcquisitionModel, round_index: int, skip_batches: int) -> torch.Generator:
    """The round's Monte-Carlo dropout stream, advanced past ``skip_batches`` full batches."""
    generator = torch.Generator(device=model.device).manual_seed(
        derive_seed(model.config.seed, "mc-dropout", round_index)
    )
    if skip_batches:
        shape = model.mc_mask_shape(model.config.score_batch_size)
        for _ in range(skip_batches):
            for _mask in model.mc_masks(shape, generator, model.device):
                pass
    return generator


def score_ids(
    model: AcquisitionModel,
    ids: Sequence[str],
    round_index: int,
    flags: tuple[bool, bool, bool],
    desc: str,
    shard: Shard,
) -> PoolOutputs:
    """Run the network over this shard's batches of ``ids``.

    Args:
        model: A fitted acquisition model.
        ids: All ids of the pass, in order.
        round_index: Round number (seeds the Monte-Carlo dropout masks).
        flags: ``(with_scores, with_embeddings, with_labels)``.
        desc: Progress-bar label.
        shard: Which batches to score (rows of the outputs: those batches' ids).
    """
    if model.network is None:
        raise RuntimeError("fit the acquisition model before scoring")
    with_scores, with_embeddings, with_labels = flags
    network = model.network
    start = time.perf_counter()
    size = model.config.score_batch_size
    first, end = shard.batch_range(math.ceil(len(ids) / size))
    rows = list(ids[first * size : end * size])
    mc_generator: torch.Generator | None = None
    if with_scores and model.strategy.needs_mc_samples and rows:
        mc_generator = _mc_generator(model, round_index, first)
    filled = _Rows(len(rows), with_scores, with_embeddings)
    network.eval()
    with torch.inference_mode():
        bar = progress(
            model.pool_batches(rows, with_labels),
            total=end - first,
            desc=f"round {round_index}: {desc}",
            unit="batch",
            disable=True if shard.rank else None,
        )
        for batch in bar:
            images = model.to_device(batch["image"])
            with autocast(model.device, model.amp):
                outputs = model.pool_outputs(network, images, mc_generator)
            filled.add(batch, outputs, model, mc_generator is not None, with_labels)
    return filled.outputs(time.perf_counter() - start)


def merge_outputs(parts: Sequence[PoolOutputs], seconds: float) -> PoolOutputs:
    """The outputs of a whole pass from its shards' outputs, in rank order."""
    scores = [part.scores for part in parts if part.scores is not None]
    embeddings = [part.embeddings for part in parts if part.embeddings is not None]
    correct = sum(part.counts[0] for part in parts)
    labelled = sum(part.counts[1] for part in parts)
    return PoolOutputs(
        scores=np.concatenate(scores) if scores else None,
        embeddings=np.concatenate(embeddings) if embeddings else None,
        accuracy=correct / labelled if labelled else None,
        seconds=seconds,
        counts=(correct, labelled),
    )
