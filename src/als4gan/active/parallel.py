"""``als4gan select`` under ``torchrun``: every process scores its shard of the pool.

Rank 0 runs the selection exactly as a single process does (budget, refit, picks, oracle,
every file). Each time it scores ids it sends them to the other processes with the model's
weights (once per round) and the strategy; each process scores its contiguous run of the
batches (:class:`als4gan.active.scoring.Shard`) and rank 0 gathers the rows in pool order, so
the scores, the picks and every file are those of a single process (docs/selection.md,
"Several processes and nodes"). The other processes write nothing and return rank 0's result.

Only scoring is shared: the refit runs on rank 0 alone. A refit split over processes with
DistributedDataParallel would not give the single-process weights bit for bit (each process
would sum the gradients of part of a batch, BatchNorm would see part of a batch), and so not
the same selection; the labelled set it trains on is a few percent of the pool.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from als4gan.active.config import SelectConfig
from als4gan.active.scoring import PoolOutputs, Shard, merge_outputs
from als4gan.active.strategies import QueryStrategy
from als4gan.errors import Als4ganError

if TYPE_CHECKING:
    from als4gan.active.acquisition import AcquisitionModel
    from als4gan.distributed import DistributedContext

#: Builds the acquisition model of a process from rank 0's config and strategy.
ModelBuilder = Callable[[SelectConfig, QueryStrategy], "AcquisitionModel"]


class SelectionStoppedError(Als4ganError):
    """Rank 0 of a ``torchrun`` selection stopped with an error (raised by the others)."""


@dataclass
class _Request:
    """Rank 0 -> every process: score ``ids`` (``state``: new weights, else the last ones)."""

    ids: list[str]
    round_index: int
    flags: tuple[bool, bool, bool]
    desc: str
    config: SelectConfig
    strategy: QueryStrategy
    state: dict[str, torch.Tensor] | None


@dataclass
class _Stop:
    """Rank 0 -> every process: the selection ended (``error``: how it failed)."""

    result: Any
    error: str | None


@dataclass
class _Answer:
    """A process -> rank 0: its shard's rows, or the error that stopped it."""

    outputs: PoolOutputs | None
    error: BaseException | str | None


def _broadcast(message: object) -> object:
    holder = [message]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def _score_share(
    model: AcquisitionModel, request: _Request, context: DistributedContext
) -> list[_Answer]:
    """Score this process's shard; rank 0 gets every process's answer (others: ``[]``)."""
    shard = Shard(context.rank, context.world_size)
    try:
        outputs = model.score_shard(
            request.ids, request.round_index, request.flags, request.desc, shard
        )
        answer = _Answer(outputs, None)
    except Exception as err:  # reported to rank 0, which stops every process
        portable = err if context.is_main or isinstance(err, Als4ganError) else repr(err)
        answer = _Answer(None, portable)
    gathered: list[Any] | None = [None] * context.world_size if context.is_main else None
    # Rank 0 keeps its own answer (its exception may not pickle); it sends a placeholder.
    dist.gather_object(_Answer(None, None) if context.is_main else answer, gathered, dst=0)
    if gathered is None:
        return []
    answers: list[_Answer] = [answer, *gathered[1:]]
    return answers


def _raise_first(answers: Sequence[_Answer]) -> None:
    for rank, answer in enumerate(answers):
        error = answer.error
        if isinstance(error, BaseException):
            raise error
        if error is not None:
            raise RuntimeError(f"process {rank} of the selection failed: {error}")


class PoolScorer:
    """Scores ids with the acquisition model: alone, or sharded over the ``torchrun`` processes.

    Args:
        context: This process's place in the ``torchrun`` job (``None``: a single process).
    """

    def __init__(self, context: DistributedContext | None = None) -> None:
        self.context = context
        self._sent_round: int | None = None

    def score(
        self,
        model: AcquisitionModel,
        ids: Sequence[str],
        round_index: int,
        *,
        with_scores: bool,
        with_embeddings: bool,
        with_labels: bool = False,
        desc: str = "score pool",
    ) -> PoolOutputs:
        """``model.score_pool`` over ``ids``; the rows of every process merged in pool order."""
        context = self.context
        if context is None or not context.enabled:
            return model.score_pool(
                ids,
                round_index,
                with_scores=with_scores,
                with_embeddings=with_embeddings,
                with_labels=with_labels,
                desc=desc,
            )
        start = time.perf_counter()
        state = None if round_index == self._sent_round else model.state_dict()
        self._sent_round = round_index
        flags = (with_scores, with_embeddings, with_labels)
        request = _Request(list(ids), round_index, flags, desc, model.config, model.strategy, state)
        _broadcast(request)
        answers = _score_share(model, request, context)
        _raise_first(answers)
        parts = [answer.outputs for answer in answers if answer.outputs is not None]
        return merge_outputs(parts, time.perf_counter() - start)

    def stop(self, result: Any, error: BaseException | None = None) -> None:
        """Tell the other processes that the selection ended (with ``result`` or ``error``)."""
        if self.context is not None and self.context.enabled:
            _broadcast(_Stop(result, None if error is None else type(error).__name__))


def serve(context: DistributedContext, build: ModelBuilder) -> Any:
    """The loop of ranks other than 0: score what rank 0 asks until it stops.

    Returns:
        Rank 0's result.

    Raises:
        SelectionStoppedError: If rank 0 stopped with an error.
    """
    model: AcquisitionModel | None = None
    while True:
        message = _broadcast(None)
        if isinstance(message, _Stop):
            if message.error is not None:
                raise SelectionStoppedError(
                    f"process 0 of the selection stopped ({message.error}, its message is "
                    "above); this process stops too"
                )
            return message.result
        assert isinstance(message, _Request)
        try:
            if model is None:
                model = build(message.config, message.strategy)
            model.strategy = message.strategy
            if message.state is not None:
                model.load_state_dict(message.state)
        except Exception as err:  # reported to rank 0 through the gather below
            dist.gather_object(_Answer(None, repr(err)), None, dst=0)
            continue
        _score_share(model, message, context)


def launched_on_several_processes() -> bool:
    """Whether ``torchrun`` (or an equivalent launcher) started more than one process."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def run_processes(
    device_name: str,
    select: Callable[[PoolScorer], Any],
    builder: Callable[[DistributedContext], ModelBuilder],
) -> tuple[Any, bool]:
    """Join the ``torchrun`` job; rank 0 runs ``select``, the others score for it.

    Args:
        device_name: ``--device`` (each process uses ``cuda:LOCAL_RANK`` on GPUs).
        select: The selection, given the sharded scorer (rank 0).
        builder: Gives, for this process's context, how it builds its acquisition model.

    Returns:
        ``(rank 0's result, whether this process is rank 0)``.
    """
    from als4gan import distributed

    owned = not dist.is_initialized()
    context = distributed.setup(device_name)
    try:
        if not context.is_main:
            return serve(context, builder(context)), False
        scorer = PoolScorer(context)
        try:
            result = select(scorer)
        except BaseException as err:
            scorer.stop(None, err)
            raise
        scorer.stop(result)
        return result, True
    finally:
        if owned:
            distributed.cleanup(context)
