"""s4GAN (docs/method.md, stage 2): L_ce + feature matching + self-training chosen by D.

One micro-step (steps 1-7 of docs/training.md):

1. ``L_ce = CE(G(x_l), y_l)`` on the labelled batch (ignore label 255).
2. ``p_u = softmax(G(x_u))``; ``d_u, f_u = D([p_u, x_u])`` (D's weights frozen for this part).
3. ``d_g, f_g = D([onehot(y_g), x_g])`` on a ground-truth batch from the labelled set.
4. ``L_fm = mean | mean_batch(f_g) - mean_batch(f_u) |``.
5. ``L_st = CE(G(x_u)[d_u > tau], argmax G(x_u)[d_u > tau])`` (labels without gradient).
6. G's gradient from ``L_ce + lambda_fm L_fm + lambda_st L_st``.
7. D's gradient from ``[BCE(D([p_u.detach(), x_u]), 0) + BCE(D([onehot(y_g), x_g]), 1)] / 2``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from als4gan.data.encoding import IGNORE_INDEX
from als4gan.runtime import autocast
from als4gan.train.losses import (
    DISCRIMINATOR_STAT_KEYS,
    cross_entropy,
    discriminator_loss,
    discriminator_record,
    discriminator_statistics,
    feature_matching_loss,
    fill_invalid,
    onehot_with_ignore,
    select_confident,
    self_training_loss,
)
from als4gan.train.methods.base import Method

if TYPE_CHECKING:
    from als4gan.train.trainer import Trainer


class SeparatePasses(nn.Module):
    """Runs a network on several batches in separate forward passes, within one module call.

    Each batch gets its own BatchNorm statistics, and a DistributedDataParallel wrapper around
    this module sees one forward per backward (parameters used twice in it are fine).

    Args:
        network: The wrapped network.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, *batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One output per input batch."""
        return tuple(self.network(batch) for batch in batches)


class S4GAN(Method):
    """The semi-supervised GAN of the paper (steps 1-7 above)."""

    name = "s4gan"
    summary = "semi-supervised GAN: L_ce + feature matching + self-training chosen by D"
    stat_keys = (
        "loss_ce",
        "loss_fm",
        "loss_st",
        "loss_d",
        "accepted",
        "judged",
        *DISCRIMINATOR_STAT_KEYS,
    )
    loss_keys = ("loss_ce", "loss_fm", "loss_st", "loss_d")
    # Step 3 (docs/training.md): D's "real" examples come from the labelled set, in their own
    # order.
    streams = MappingProxyType({"unlabelled": "unlabelled", "ground_truth": "labelled"})
    uses_unlabelled = True
    uses_discriminator = True

    def wrap(self, generator: nn.Module) -> nn.Module:
        """Separate passes over the labelled and unlabelled batches.

        With trained BatchNorm, one pass over both batches normalises the labelled crops with
        statistics of the unlabelled ones, which cost about 0.1 val mIoU on the synthetic set
        (0.270 vs 0.384 and 0.313 vs 0.412 on two seeds, 300 iterations, R18, with
        lambda_fm = lambda_st = 0; see docs/training.md). Both passes happen inside one module
        call, so DDP sees a single forward per backward.
        """
        return SeparatePasses(generator)

    def micro_step(self, trainer: Trainer, index: int, sync: bool, scale: float) -> torch.Tensor:
        """Steps 1-7 of docs/training.md on one micro-batch."""
        from als4gan.train.trainer import backward

        assert trainer.discriminator is not None and trainer.d_train is not None
        config = self.config
        discriminator = trainer.discriminator
        x_l, y_l = trainer.to_device(trainer.streams["labelled"].next())
        x_u, pad_u = trainer.to_device(trainer.streams["unlabelled"].next())
        x_g, y_g = trainer.to_device(trainer.streams["ground_truth"].next())
        valid_u = pad_u != IGNORE_INDEX  # False only where augmentation padded the crop

        # Generator: steps 1-6, with D's weights frozen.
        discriminator.requires_grad_(False)
        with trainer.no_sync(trainer.g_train, sync):
            with autocast(trainer.device, trainer.amp):
                logits_l, logits_u = trainer.g_train(x_l, x_u)
                loss_ce = cross_entropy(logits_l, y_l)  # 1
                p_u = fill_invalid(torch.softmax(logits_u.float(), dim=1), valid_u)  # 2
                fake = discriminator(p_u, x_u)
                real_g = onehot_with_ignore(y_g, trainer.num_classes)  # 3
                with torch.no_grad():
                    real = discriminator(real_g, x_g)
                loss_fm = feature_matching_loss(real["features"], fake["features"])  # 4
                selected = select_confident(fake["prob"], config.threshold_st)  # 5
                loss_st = self_training_loss(logits_u, selected, valid_u)
                loss_g = loss_ce + config.lambda_fm * loss_fm + config.lambda_st * loss_st  # 6
            backward(loss_g * scale)

        # Discriminator: step 7, fake = detached predictions, real = ground truth. One forward
        # over both halves (D has no batch statistics, so this equals two separate passes).
        discriminator.requires_grad_(True)
        with trainer.no_sync(trainer.d_train, sync):
            with autocast(trainer.device, trainer.amp):
                judged = trainer.d_train(torch.cat([p_u.detach(), real_g]), torch.cat([x_u, x_g]))
                loss_d = discriminator_loss(
                    judged["logit"][: len(x_u)], judged["logit"][len(x_u) :]
                )
            backward(loss_d * scale)

        losses = torch.stack(
            [
                loss_ce.detach(),
                loss_fm.detach(),
                loss_st.detach(),
                loss_d.detach(),
                selected.sum().float(),
                torch.tensor(float(len(x_u)), device=trainer.device),
            ]
        ).double()
        # What D did in the generator phase (the outputs that chose the self-training samples).
        d_stats = discriminator_statistics(real["prob"], fake["prob"], config.threshold_st)
        return torch.cat([losses, d_stats])

    def record(self, totals: dict[str, float], parts: int) -> dict[str, Any]:
        """Losses, D's accept rate and what D's outputs looked like."""
        record = super().record(totals, parts)
        record["accept_rate"] = totals["accepted"] / max(1.0, totals["judged"])
        record.update(discriminator_record(totals, totals["judged"]))
        return record
