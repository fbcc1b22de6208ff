"""Endless, seeded, resumable data order: batches of (index, seed) pairs for SeededDataset.

Each data stream (labelled, unlabelled, ground truth for D) is a fixed infinite sequence of
items decided by the run's seed alone: epoch ``e`` is a permutation of the images drawn from a
generator seeded with (seed, stream, e), and item ``k`` of the sequence carries its own
augmentation seed. Iteration ``t`` takes the global items ``[t * B, (t + 1) * B)``; each process
and accumulation step takes its slice of them. So the order depends on nothing but the seed and
the iteration number: not on DataLoader workers, not on the number of processes, and a run
resumed at iteration ``t`` (``position = t``) sees exactly the images and crops an uninterrupted
run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from als4gan.errors import CheckpointError
from als4gan.runtime import derive_seed

Item = tuple[int, int]


class InfiniteSeededSampler:
    """A batch sampler yielding this process's micro-batches of ``(index, seed)`` pairs forever.

    Args:
        num_samples: Images in the stream's dataset.
        batch_size: Global items per iteration (all processes and accumulation steps).
        seed: Run seed.
        stream: Name of the stream (different streams get independent orders).
        rank: This process's rank.
        world_size: Number of processes.
        accumulation: Micro-batches per iteration and process.
        position: Index of the first iteration to yield (iterations already consumed).

    Raises:
        ValueError: If the batch does not split evenly over processes and accumulation steps.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int,
        stream: str,
        *,
        rank: int = 0,
        world_size: int = 1,
        accumulation: int = 1,
        position: int = 0,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"stream '{stream}' has no images")
        if batch_size % (world_size * accumulation):
            raise ValueError(
                f"batch size {batch_size} does not split into {world_size} process(es) x "
                f"{accumulation} accumulation step(s)"
            )
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.stream = stream
        self.rank = rank
        self.world_size = world_size
        self.accumulation = accumulation
        self.micro_batch_size = batch_size // (world_size * accumulation)
        self.position = position
        self._epoch_cache: tuple[int, list[int]] | None = None

    def permutation(self, epoch: int) -> list[int]:
        """The image order of ``epoch`` (a seeded permutation, cached for the current epoch)."""
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            generator = torch.Generator().manual_seed(
                derive_seed(self.seed, self.stream, "epoch", epoch)
            )
            order = torch.randperm(self.num_samples, generator=generator).tolist()
            self._epoch_cache = (epoch, order)
        return self._epoch_cache[1]

    def item(self, k: int) -> Item:
        """Global item ``k`` of the stream: (image index, augmentation seed)."""
        epoch, offset = divmod(k, self.num_samples)
        index = self.permutation(epoch)[offset]
        return index, derive_seed(self.seed, self.stream, "item", k) & 0x7FFF_FFFF_FFFF

    def global_batch(self, iteration: int) -> list[Item]:
        """All items of ``iteration`` over every process and accumulation step."""
        start = iteration * self.batch_size
        return [self.item(k) for k in range(start, start + self.batch_size)]

    def micro_batch(self, iteration: int, step: int) -> list[Item]:
        """This process's items for accumulation step ``step`` of ``iteration``.

        The global batch is cut into ``accumulation x world_size`` equal chunks; chunk
        ``step * world_size + rank`` belongs here.
        """
        chunk = step * self.world_size + self.rank
        start = iteration * self.batch_size + chunk * self.micro_batch_size
        return [self.item(k) for k in range(start, start + self.micro_batch_size)]

    def __iter__(self) -> Iterator[list[Item]]:
        iteration = self.position
        while True:
            for step in range(self.accumulation):
                yield self.micro_batch(iteration, step)
            iteration += 1

    def advance(self, iterations: int = 1) -> None:
        """Record that ``iterations`` more iterations were consumed (for :meth:`state_dict`)."""
        self.position += iterations

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state: the stream identity and the iterations consumed."""
        return {
            "stream": self.stream,
            "seed": self.seed,
            "num_samples": self.num_samples,
            "batch_size": self.batch_size,
            "position": self.position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position.

        Raises:
            CheckpointError: If the saved stream had another seed, size or batch size (the
                labelled set or the options changed since the checkpoint was written).
        """
        for key in ("seed", "num_samples", "batch_size"):
            if state.get(key) != getattr(self, key):
                raise CheckpointError(
                    f"cannot resume data stream '{self.stream}': the checkpoint has {key}="
                    f"{state.get(key)} but this run has {getattr(self, key)}. The labelled set, "
                    "dataset or batch size changed since the checkpoint was written."
                )
        self.position = int(state["position"])
