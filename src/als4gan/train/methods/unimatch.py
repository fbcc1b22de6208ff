"""UniMatch: weak-to-strong consistency with a feature-perturbation stream (docs/training.md).

One micro-step, as published (Yang et al., CVPR 2023; the numbers are in docs/method.md):

1. A labelled batch ``x_l, y_l``; an unlabelled batch ``x_w`` (the weak view: random scale,
   crop, mirror) and a second unlabelled batch ``x_m``, in its own order, to mix in.
2. ``p_m = softmax(G(x_m))`` in eval mode without gradient: its pseudo-labels ``argmax p_m``
   and confidences ``max p_m``.
3. Two strong views of each weak image and of each mixing image (colour jitter, grayscale,
   blur; :mod:`als4gan.train.strong`); CutMix pastes a random box of the mixing image's strong
   view into each strong view (boxes drawn independently for the two views).
4. One pass of G over ``[x_l, x_w]``: the encoder features go to the decoder twice, as they
   are and with channel dropout (the feature perturbation), giving ``G(x_l)``, ``G(x_w)`` and
   ``G_fp(x_w)``; a second pass over both strong views.
5. The weak view's pseudo-labels ``argmax G(x_w)`` and confidences, without gradient; for each
   strong view they are cut and mixed with the mixing image's with the same box, as are the
   validity maps (padded pixels are ignored).
6. ``L_x = CE(G(x_l), y_l)``; each unsupervised loss is the cross-entropy against the
   pseudo-labels on confident pixels (confidence >= threshold), summed and divided by the
   number of valid pixels; ``L = (L_x + w_u [(1 - w_fp)/2 (L_s1 + L_s2) + w_fp L_fp]) / 2``
   (published: ``w_u = 1``, ``w_fp = 0.5``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from als4gan.data.encoding import IGNORE_INDEX
from als4gan.errors import ConfigError
from als4gan.runtime import autocast, derive_seed
from als4gan.train.losses import cross_entropy
from als4gan.train.methods.base import Method
from als4gan.train.strong import StrongAugment, cutmix, cutmix_box

if TYPE_CHECKING:
    from als4gan.train.config import TrainConfig
    from als4gan.train.trainer import Trainer


def weak_pseudo_labels(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, label) per pixel: max and argmax of the softmax, without gradient."""
    confidence, labels = torch.softmax(logits.detach().float(), dim=1).max(dim=1)
    return confidence, labels


def confident_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    confidence: torch.Tensor,
    valid: torch.Tensor,
    threshold: float,
) -> torch.Tensor:
    """UniMatch's unsupervised loss: CE on confident valid pixels / number of valid pixels.

    Pixels below the threshold add nothing to the sum but still count in the denominator (as
    published), so the loss shrinks while few pseudo-labels are confident. No valid pixel
    gives 0.

    Args:
        logits: (B, C, H, W) scores of the perturbed view.
        labels: (B, H, W) pseudo-labels (no gradient).
        confidence: (B, H, W) their confidences.
        valid: (B, H, W) boolean, False at padded / no-data pixels.
        threshold: Confidence threshold.
    """
    keep = (confidence >= threshold) & valid
    safe = torch.where(keep, labels, torch.zeros_like(labels))
    pixel = F.cross_entropy(logits.float(), safe.detach(), reduction="none")
    return (pixel * keep).sum() / valid.sum().clamp_min(1)


def combined_loss(
    loss_x: torch.Tensor,
    loss_s1: torch.Tensor,
    loss_s2: torch.Tensor,
    loss_fp: torch.Tensor,
    fp_weight: float = 0.5,
    unsup_weight: float = 1.0,
) -> torch.Tensor:
    """``(L_x + w_u [(1 - w_fp)/2 (L_s1 + L_s2) + w_fp L_fp]) / 2`` (published: 0.25/0.25/0.5)."""
    strong = (1 - fp_weight) / 2
    unsupervised = strong * loss_s1 + strong * loss_s2 + fp_weight * loss_fp
    return (loss_x + unsup_weight * unsupervised) / 2


class UniMatchPasses(nn.Module):
    """G's training passes for UniMatch in one module call (one forward per backward for DDP).

    The network must offer ``encode(x) -> features`` and ``decode(features, size) -> logits``
    (both segmentation heads do); the feature perturbation is channel dropout on every encoder
    feature map before the decoder.

    Args:
        network: The segmentation network.
        dropout: Channel-dropout probability of the feature perturbation.
    """

    def __init__(self, network: nn.Module, dropout: float = 0.5) -> None:
        super().__init__()
        if not all(callable(getattr(network, name, None)) for name in ("encode", "decode")):
            raise ConfigError(
                f"{type(network).__name__} has no encode/decode pair, which UniMatch's feature "
                "perturbation needs; use --arch deeplabv2 or deeplabv3plus"
            )
        self.network = network
        self.perturb = nn.Dropout2d(dropout)

    def forward(
        self, x_l: torch.Tensor, x_w: torch.Tensor, x_s1: torch.Tensor, x_s2: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """``(G(x_l), G(x_w), G_fp(x_w), G(x_s1), G(x_s2))``."""
        size: Sequence[int] = x_l.shape[-2:]
        encode: Callable[[torch.Tensor], dict[str, torch.Tensor]]
        encode = self.network.encode  # type: ignore[assignment]
        decode: Callable[[dict[str, torch.Tensor], Sequence[int]], torch.Tensor]
        decode = self.network.decode  # type: ignore[assignment]
        features = encode(torch.cat([x_l, x_w]))
        doubled = {
            name: torch.cat([value, self.perturb(value)]) for name, value in features.items()
        }
        clean, perturbed = decode(doubled, size).chunk(2)
        strong_1, strong_2 = self.network(torch.cat([x_s1, x_s2])).chunk(2)
        count = len(x_l)
        return clean[:count], clean[count:], perturbed[count:], strong_1, strong_2


@dataclass
class WeakView:
    """Images without strong augmentation and what G says about them (pseudo-labels).

    Attributes:
        images: (B, C, H, W) the weak view.
        valid: (B, H, W) boolean, False at padded / no-data pixels.
        confidence: (B, H, W) max softmax probability (set once G has seen the images).
        labels: (B, H, W) argmax pseudo-labels (set with ``confidence``).
    """

    images: torch.Tensor
    valid: torch.Tensor
    confidence: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    labels: torch.Tensor = field(default_factory=lambda: torch.empty(0))


class UniMatch(Method):
    """Weak-to-strong consistency with two strong views and a feature-perturbation stream."""

    name = "unimatch"
    summary = "weak-to-strong consistency: confident weak pseudo-labels train strong views"
    stat_keys = (
        "loss_ce",
        "loss_u_s1",
        "loss_u_s2",
        "loss_u_fp",
        "loss_total",
        "confident",
        "valid",
        "pseudo_correct",
        "pseudo_judged",
        "pseudo_correct_all",
        "pseudo_judged_all",
    )
    loss_keys = ("loss_ce", "loss_u_s1", "loss_u_s2", "loss_u_fp", "loss_total")
    # The mixing images come in their own order (the paper mixes with another unlabelled image).
    streams = MappingProxyType({"unlabelled": "unlabelled", "unlabelled_mix": "unlabelled"})
    uses_unlabelled = True

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.strong = StrongAugment(
            jitter=tuple(config.jitter),  # type: ignore[arg-type]
            jitter_prob=config.jitter_prob,
            grayscale_prob=config.grayscale_prob,
            blur_prob=config.blur_prob,
            blur_sigma=tuple(config.blur_sigma),  # type: ignore[arg-type]
        )

    def check(self, config: TrainConfig) -> None:
        """Multi-scale inputs fuse three decoder outputs: no single feature map to perturb."""
        if config.multi_scale:
            raise ConfigError(
                "--method unimatch perturbs the encoder features of one pass; drop "
                "--multi-scale (or use --method s4gan/supervised with it)"
            )

    def wants_truth(self, config: TrainConfig) -> bool:
        """Pseudo-label accuracy is logged unless ``--no-pseudo-label-check``."""
        return config.pseudo_label_check

    def wrap(self, generator: nn.Module) -> nn.Module:
        """All of G's passes of a step in one call (see :class:`UniMatchPasses`)."""
        return UniMatchPasses(generator, self.config.fp_dropout)

    def generator_for(self, trainer: Trainer, index: int) -> torch.Generator:
        """The strong augmentation's random draws: a function of seed, step, process, micro-step.

        Derived afresh each micro-step, so a resumed run draws the same views as an
        uninterrupted one without extra checkpoint state (the step is saved).
        """
        seed = derive_seed(self.config.seed, "strong", trainer.step, trainer.context.rank, index)
        return torch.Generator().manual_seed(seed)

    def micro_step(self, trainer: Trainer, index: int, sync: bool, scale: float) -> torch.Tensor:
        """Steps 1-6 of the module docstring on one micro-batch."""
        from als4gan.train.trainer import backward

        config = self.config
        x_l, y_l = trainer.to_device(trainer.streams["labelled"].next())  # 1
        batch_w = trainer.streams["unlabelled"].next()
        x_w, pad_w = trainer.to_device(batch_w)
        x_m, pad_m = trainer.to_device(trainer.streams["unlabelled_mix"].next())
        weak = WeakView(x_w, pad_w != IGNORE_INDEX)
        mix = self.mixing_pseudo_labels(trainer, x_m, pad_m != IGNORE_INDEX)  # 2
        x_s1, x_s2, boxes = self.strong_views(trainer, index, x_w, x_m)  # 3
        with trainer.no_sync(trainer.g_train, sync):
            with autocast(trainer.device, trainer.amp):
                logits_x, logits_w, logits_fp, logits_s1, logits_s2 = trainer.g_train(
                    x_l, x_w, x_s1, x_s2
                )  # 4
                loss_x = cross_entropy(logits_x, y_l)
                weak.confidence, weak.labels = weak_pseudo_labels(logits_w)  # 5
                losses = [
                    self.mixed_loss(logits, weak, mix, box)
                    for box, logits in ((boxes[0], logits_s1), (boxes[1], logits_s2))
                ]
                losses.append(
                    confident_cross_entropy(
                        logits_fp, weak.labels, weak.confidence, weak.valid, config.threshold_u
                    )
                )
                loss_s1, loss_s2, loss_fp = losses
                loss = combined_loss(
                    loss_x, loss_s1, loss_s2, loss_fp, config.fp_weight, config.unsup_weight
                )  # 6
            backward(loss * scale)
        return self.statistics(trainer, [loss_x, *losses, loss], weak, batch_w.get("truth"))

    def mixing_pseudo_labels(
        self, trainer: Trainer, x_m: torch.Tensor, valid_m: torch.Tensor
    ) -> WeakView:
        """Step 2: the mixing images' pseudo-labels and confidences (eval mode, no gradient)."""
        trainer.generator.eval()
        with torch.no_grad(), autocast(trainer.device, trainer.amp):
            conf_m, label_m = weak_pseudo_labels(trainer.generator(x_m))
        trainer.set_train_mode()
        return WeakView(x_m, valid_m, conf_m, label_m)

    def strong_views(
        self, trainer: Trainer, index: int, x_w: torch.Tensor, x_m: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Step 3: two strong views of the weak images, each with a CutMix box of a mixing one."""
        config = self.config
        draws = self.generator_for(trainer, index)
        views = [self.strong(images, draws) for images in (x_w, x_m, x_w, x_m)]
        height, width = x_w.shape[-2:]
        boxes = [
            torch.stack(
                [
                    cutmix_box(
                        height,
                        width,
                        draws,
                        config.cutmix_prob,
                        tuple(config.cutmix_area),  # type: ignore[arg-type]
                        tuple(config.cutmix_ratio),  # type: ignore[arg-type]
                    )
                    for _ in range(len(x_w))
                ]
            ).to(trainer.device)
            for _ in range(2)
        ]
        x_s1 = trainer.memory_format(cutmix(views[0], views[1], boxes[0]))
        x_s2 = trainer.memory_format(cutmix(views[2], views[3], boxes[1]))
        return x_s1, x_s2, boxes

    def mixed_loss(
        self, logits: torch.Tensor, weak: WeakView, mix: WeakView, box: torch.Tensor
    ) -> torch.Tensor:
        """Step 6's loss of one strong view: pseudo-labels, confidences, validity cut and mixed."""
        return confident_cross_entropy(
            logits,
            cutmix(weak.labels, mix.labels, box),
            cutmix(weak.confidence, mix.confidence, box),
            cutmix(weak.valid, mix.valid, box),
            self.config.threshold_u,
        )

    def statistics(
        self,
        trainer: Trainer,
        losses: list[torch.Tensor],
        weak: WeakView,
        truth: torch.Tensor | None,
    ) -> torch.Tensor:
        """The sums in ``stat_keys`` order: losses, coverage, pseudo-label accuracy counts."""
        confident = (weak.confidence >= self.config.threshold_u) & weak.valid
        stats = [value.detach() for value in losses]
        stats += [confident.sum(), weak.valid.sum()]
        stats += pseudo_label_accuracy(weak.labels, confident, weak.valid, truth, trainer)
        return torch.stack([value.double() for value in stats])

    def record(self, totals: dict[str, float], parts: int) -> dict[str, Any]:
        """Losses, pseudo-label coverage and (where masks exist) pseudo-label accuracy."""
        record = super().record(totals, parts)
        record["pseudo_coverage"] = totals["confident"] / max(1.0, totals["valid"])
        if totals["pseudo_judged"] > 0:
            record["pseudo_accuracy"] = totals["pseudo_correct"] / totals["pseudo_judged"]
        if totals["pseudo_judged_all"] > 0:
            record["pseudo_accuracy_all"] = (
                totals["pseudo_correct_all"] / totals["pseudo_judged_all"]
            )
        return record


def pseudo_label_accuracy(
    labels: torch.Tensor,
    confident: torch.Tensor,
    valid: torch.Tensor,
    truth: torch.Tensor | None,
    trainer: Trainer,
) -> list[torch.Tensor]:
    """Correct / judged pixels of the confident and of all pseudo-labels (diagnostic only).

    ``truth`` holds the unlabelled images' masks where they exist on disk (ignore elsewhere); it
    never reaches a loss. Without it every count is 0.
    """
    if truth is None:
        zero = torch.zeros((), device=labels.device)
        return [zero, zero, zero, zero]
    truth = truth.to(trainer.device, non_blocking=True)
    known = valid & (truth != IGNORE_INDEX)
    correct = (labels == truth) & known
    return [
        (correct & confident).sum(),
        (known & confident).sum(),
        correct.sum(),
        known.sum(),
    ]
