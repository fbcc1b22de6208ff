"""What a training method is: its data streams, its networks' wrapper and one training step.

The trainer (:mod:`als4gan.train.trainer`) owns everything the methods share: data, the
generator, its optimiser, checkpoints, validation, DDP and gradient accumulation. A method adds
its streams, its step and its metrics. A new method is a subclass in a new file, added to
:data:`als4gan.train.methods.METHOD_CLASSES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from als4gan.train.config import TrainConfig
    from als4gan.train.trainer import Trainer


class Method:
    """One training method (subclasses set the class attributes and :meth:`micro_step`).

    Attributes:
        name: The ``--method`` value.
        summary: One line for the log and ``--help``.
        stat_keys: Names of the sums :meth:`micro_step` returns, in order (added over
            accumulation steps and processes before :meth:`record` divides them).
        loss_keys: Record fields that must stay finite (the run stops otherwise).
        streams: Extra data streams besides ``labelled``: name -> ``"labelled"`` (images with
            masks) or ``"unlabelled"`` (images only, plus a validity map).
        uses_unlabelled: Whether the method trains on the unlabelled images.
        uses_discriminator: Whether the trainer builds s4GAN's discriminator and its optimiser.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    stat_keys: ClassVar[tuple[str, ...]] = ()
    loss_keys: ClassVar[tuple[str, ...]] = ()
    streams: ClassVar[Mapping[str, str]] = MappingProxyType({})
    uses_unlabelled: ClassVar[bool] = False
    uses_discriminator: ClassVar[bool] = False

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def check(self, config: TrainConfig) -> None:
        """Refuse options the method cannot use (raises ConfigError); nothing by default."""

    def wants_truth(self, config: TrainConfig) -> bool:
        """Whether unlabelled batches carry their masks (``truth``) for diagnostics only."""
        return False

    def wrap(self, generator: nn.Module) -> nn.Module:
        """The module the step calls (and DDP wraps); the generator itself by default."""
        return generator

    def micro_step(self, trainer: Trainer, index: int, sync: bool, scale: float) -> torch.Tensor:
        """Forward and backward on one micro-batch; returns float64 sums in ``stat_keys`` order.

        Args:
            trainer: The trainer (streams, networks, device, autocast settings).
            index: Which accumulation step of the iteration (0-based).
            sync: Whether this is the last accumulation step (DDP reduces gradients then).
            scale: Loss factor, ``1 / grad_accum``.
        """
        raise NotImplementedError

    def record(self, totals: dict[str, float], parts: int) -> dict[str, Any]:
        """Metrics-record fields from the summed statistics (``parts`` = micro-batches summed)."""
        return {key: totals[key] / parts for key in self.loss_keys}

    def state_dict(self) -> dict[str, Any]:
        """State to keep in ``latest.pt`` for an exact resume (none by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state."""
