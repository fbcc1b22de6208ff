"""torch.distributed set-up for runs launched by ``torchrun`` (one process per GPU or CPU slot).

Nothing here starts processes: ``torchrun`` does that and sets ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. A plain ``als4gan train`` is a world of
one process and uses none of this.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from als4gan.errors import ConfigError
from als4gan.runtime import resolve_device


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job.

    Attributes:
        rank: Global rank (0 writes files).
        local_rank: Rank on this node (selects the GPU).
        world_size: Number of processes.
        device: This process's device.
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run folder and prints progress."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """Whether torchrun (or an equivalent launcher) set the distributed environment."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device_name: str = "auto") -> DistributedContext:
    """Join the process group when launched by torchrun; otherwise a single-process context.

    The backend is NCCL for CUDA devices and gloo otherwise. Each process uses
    ``cuda:LOCAL_RANK`` when the device is CUDA.

    Args:
        device_name: ``--device`` value.

    Raises:
        ConfigError: On an inconsistent environment or an unavailable device.
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return DistributedContext(0, 0, 1, resolve_device(device_name))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ["WORLD_SIZE"])
    device = resolve_device(device_name)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) here: "
                "start at most one process per GPU (torchrun --nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(minutes=30),
        )
    return DistributedContext(rank, local_rank, world_size, device)


def cleanup(context: DistributedContext) -> None:
    """Leave the process group (when one was joined)."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    """Wait for every process (no-op for a single process)."""
    if context.enabled:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum ``tensor`` over processes in place and return it (no-op for a single process)."""
    if context.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_object(value: object, context: DistributedContext) -> object:
    """Rank 0's ``value`` on every process (for small plain-data decisions)."""
    if not context.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]
