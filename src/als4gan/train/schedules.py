"""Optimisers and learning-rate schedules of s4GAN (stage 2 of docs/method.md).

Generator: SGD, momentum 0.9, weight decay 5e-4; backbone at the base rate, head (ASPP) weights
at 10x and head biases at 20x without weight decay. Discriminator: Adam, betas (0.9, 0.99).
Both decay polynomially: ``lr_t = lr_0 * (1 - t / T) ** power``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from als4gan.train.config import TrainConfig


def poly_factor(step: int, total: int, power: float) -> float:
    """``(1 - step / total) ** power``, clamped at 0 past the end."""
    return float(max(0.0, 1.0 - step / total) ** power)


# Not torch.optim.lr_scheduler.PolynomialLR: its recursive form (lr *= ratio of factors) differs
# from base * factor in the last bits (measured: 19,990 of 20,000 steps, up to 1.3e-14 relative).
class PolyLR:
    """Polynomial decay of every parameter group's learning rate from its base value.

    ``step`` is the number of optimiser steps taken; the rate used for step ``t`` (0-based) is
    ``base * (1 - t / total) ** power``, as in the reference ``adjust_learning_rate``.

    Args:
        optimizer: The optimiser whose groups are scaled; each group's ``lr`` at construction
            is its base rate.
        total: Total number of steps (the run's iterations).
        power: Decay power.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total: int, power: float) -> None:
        self.optimizer = optimizer
        self.total = total
        self.power = power
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    def _apply(self) -> None:
        factor = poly_factor(self.last_step, self.total, self.power)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    def step(self) -> None:
        """Advance one step and set the groups' rates for the next one."""
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """Current rate of each group."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state."""
        return {
            "total": self.total,
            "power": self.power,
            "base_lrs": list(self.base_lrs),
            "last_step": self.last_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore and re-apply the rates."""
        self.total = int(state["total"])
        self.power = float(state["power"])
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        self.last_step = int(state["last_step"])
        self._apply()


def generator_parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """SGD groups: backbone (1x, decay), head weights (10x, decay), head biases (20x, no decay).

    Parameters that do not require gradients (frozen BatchNorm) are left out. Any parameter
    outside backbone and head (none in the built-in models) trains at the base rate.

    Args:
        model: A segmentation network with ``backbone_parameters()`` and ``head_parameters()``.
        config: Learning rate, weight decay and multipliers.
    """
    head_weights, head_biases = model.head_parameters()  # type: ignore[operator]
    head_ids = {id(p) for p in head_weights} | {id(p) for p in head_biases}
    base = [p for p in model.parameters() if id(p) not in head_ids]

    def trainable(params: list[nn.Parameter]) -> list[nn.Parameter]:
        return [p for p in params if p.requires_grad]

    groups = [
        {"params": trainable(base), "lr": config.lr, "weight_decay": config.weight_decay},
        {
            "params": trainable(head_weights),
            "lr": config.lr * config.head_weight_lr_mult,
            "weight_decay": config.weight_decay,
        },
        {
            "params": trainable(head_biases),
            "lr": config.lr * config.head_bias_lr_mult,
            "weight_decay": 0.0,
        },
    ]
    return [group for group in groups if group["params"]]


def build_generator_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD over :func:`generator_parameter_groups` with ``config.lr`` (never a constant)."""
    return torch.optim.SGD(
        generator_parameter_groups(model, config), lr=config.lr, momentum=config.momentum
    )


def build_discriminator_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Adam:
    """Adam with ``config.lr_d`` and ``config.betas_d`` (paper: 1e-4, (0.9, 0.99))."""
    return torch.optim.Adam(
        model.parameters(), lr=config.lr_d, betas=(config.betas_d[0], config.betas_d[1])
    )


def build_optimizers(
    generator: nn.Module, discriminator: nn.Module | None, config: TrainConfig
) -> tuple[torch.optim.Optimizer, PolyLR, torch.optim.Optimizer | None, PolyLR | None]:
    """G's SGD and D's Adam (None without D), each with its polynomial decay."""
    optimizer_g = build_generator_optimizer(generator, config)
    scheduler_g = PolyLR(optimizer_g, config.iterations, config.power)
    if discriminator is None:
        return optimizer_g, scheduler_g, None, None
    optimizer_d = build_discriminator_optimizer(discriminator, config)
    return (
        optimizer_g,
        scheduler_g,
        optimizer_d,
        PolyLR(optimizer_d, config.iterations, config.power),
    )
