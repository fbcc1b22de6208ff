"""The supervised baseline: cross-entropy on labelled images only (step 1, docs/training.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from als4gan.runtime import autocast
from als4gan.train.losses import cross_entropy
from als4gan.train.methods.base import Method

if TYPE_CHECKING:
    from als4gan.train.trainer import Trainer


class Supervised(Method):
    """L_ce on the labelled batch; the unlabelled images are not used."""

    name = "supervised"
    summary = "labelled images only (L_ce)"
    stat_keys = ("loss_ce",)
    loss_keys = ("loss_ce",)

    def micro_step(self, trainer: Trainer, index: int, sync: bool, scale: float) -> torch.Tensor:
        """Step 1 only (labelled cross-entropy)."""
        from als4gan.train.trainer import backward

        x_l, y_l = trainer.to_device(trainer.streams["labelled"].next())
        with trainer.no_sync(trainer.g_train, sync):
            with autocast(trainer.device, trainer.amp):
                loss_ce = cross_entropy(trainer.g_train(x_l), y_l)
            backward(loss_ce * scale)
        return loss_ce.detach().double().reshape(1)
