"""The s4GAN losses (docs/method.md, stage 2), each a small function that is easy to check by hand.

Notation follows docs/training.md: ``x_l, y_l`` labelled batch, ``x_u`` unlabelled batch,
``x_g, y_g`` the ground-truth batch shown to the discriminator D as "real",
``p_u = softmax(G(x_u))``, ``d_u, f_u`` D's output and pooled features for the unlabelled
predictions, ``d_g, f_g`` for the ground truth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from als4gan.data.encoding import IGNORE_INDEX


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Pixel-wise cross-entropy averaged over labelled pixels (step 1 in docs/training.md, L_ce).

    Computed in float32 whatever the autocast dtype of ``logits``. A batch without any labelled
    pixel gives 0 (not NaN, which the mean reduction would give), with a zero gradient. No
    host-device synchronisation.

    Args:
        logits: (B, C, H, W) class scores.
        target: (B, H, W) class indices, ``ignore_index`` = unlabelled.
        ignore_index: Label value that does not count.
    """
    total = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="sum")
    return total / (target != ignore_index).sum().clamp_min(1)


def onehot_with_ignore(
    target: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """One-hot class maps for D's "real" input; ignore pixels become the uniform distribution.

    Step 3 in docs/training.md feeds D ``onehot(y_g)``. Pixels without a label (unknown class, and
    the padding that random down-scaling adds) carry no class information, so they get ``1 / C`` in
    every channel: every pixel of D's input is then a probability vector (channels sum to 1), like a
    softmax output. The reference code used all-zero vectors there, which no softmax can
    produce, so D could tell real from fake by those pixels alone. The same uniform filling is
    applied to the padded pixels of the unlabelled input (see :func:`fill_invalid`).

    Args:
        target: (B, H, W) class indices.
        num_classes: Number of classes ``C``.
        ignore_index: Label value of unlabelled pixels.

    Returns:
        (B, C, H, W) float32 maps.
    """
    valid = target != ignore_index
    onehot = F.one_hot(torch.where(valid, target, 0), num_classes).permute(0, 3, 1, 2).float()
    return torch.where(valid[:, None], onehot, torch.full_like(onehot, 1.0 / num_classes))


def fill_invalid(probs: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Replace class probabilities at invalid (padded) pixels by the uniform distribution.

    Args:
        probs: (B, C, H, W) probabilities.
        valid: (B, H, W) boolean, False where the crop was padded.
    """
    return torch.where(valid[:, None], probs, torch.full_like(probs, 1.0 / probs.shape[1]))


def feature_matching_loss(features_real: torch.Tensor, features_fake: torch.Tensor) -> torch.Tensor:
    """L_fm = mean | mean_batch(f_g) - mean_batch(f_u) | (step 4 in docs/training.md).

    Args:
        features_real: (B_g, F) D's pooled features of the ground-truth inputs.
        features_fake: (B_u, F) D's pooled features of the unlabelled predictions.
    """
    return (features_real.float().mean(dim=0) - features_fake.float().mean(dim=0)).abs().mean()


def select_confident(d_prob: torch.Tensor, threshold: float) -> torch.Tensor:
    """Which unlabelled samples D accepts for self-training: ``d_u > threshold`` (step 5)."""
    return d_prob.detach().float() > threshold


#: Fixed D-output levels whose share of unlabelled samples is logged (besides ``tau``).
D_LEVELS = (0.5, 0.6, 0.7)


def discriminator_statistics(
    d_real: torch.Tensor, d_fake: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Sums that describe what D does in one micro-batch (no gradient, no synchronisation).

    Sums rather than means, so that accumulation steps and processes can be added up before
    dividing (see :data:`DISCRIMINATOR_STAT_KEYS`).

    Args:
        d_real: (B_g,) D's probabilities for the ground-truth inputs.
        d_fake: (B_u,) D's probabilities for the unlabelled predictions.
        threshold: The self-training threshold ``tau``.

    Returns:
        float64 ``[sum d_real, B_g, sum d_fake, #(d_fake > 0.5), #(> 0.6), #(> 0.7), #(> tau)]``.
    """
    real = d_real.detach().double()
    fake = d_fake.detach().float()  # compared in float32, as select_confident does
    counts = [(fake > level).sum().double() for level in (*D_LEVELS, threshold)]
    return torch.stack(
        [
            real.sum(),
            torch.tensor(float(real.numel()), dtype=torch.float64, device=real.device),
            fake.double().sum(),
            *counts,
        ]
    )


#: Names of the entries of :func:`discriminator_statistics`.
DISCRIMINATOR_STAT_KEYS = (
    "d_real_sum",
    "d_real_count",
    "d_fake_sum",
    *(f"d_above_{level}_count" for level in D_LEVELS),
    "d_above_tau_count",
)


def discriminator_record(totals: dict[str, float], judged: float) -> dict[str, float]:
    """Metrics-record fields from summed :func:`discriminator_statistics`.

    Args:
        totals: The summed statistics by :data:`DISCRIMINATOR_STAT_KEYS` name.
        judged: Number of unlabelled samples D judged (the denominator of the shares).

    Returns:
        ``d_real_mean``, ``d_fake_mean`` and ``d_above_0.5`` / ``0.6`` / ``0.7`` / ``tau``:
        the share of unlabelled samples whose D output exceeds that level.
    """
    judged = max(1.0, judged)
    record = {
        "d_real_mean": totals["d_real_sum"] / max(1.0, totals["d_real_count"]),
        "d_fake_mean": totals["d_fake_sum"] / judged,
    }
    for level in D_LEVELS:
        record[f"d_above_{level}"] = totals[f"d_above_{level}_count"] / judged
    record["d_above_tau"] = totals["d_above_tau_count"] / judged
    return record


def pseudo_labels(
    logits: torch.Tensor, valid: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Argmax pseudo-labels (no gradient); pixels that are not ``valid`` become ignore."""
    labels = logits.detach().argmax(dim=1)
    if valid is not None:
        labels = torch.where(valid, labels, torch.full_like(labels, ignore_index))
    return labels


def self_training_loss(
    logits: torch.Tensor,
    selected: torch.Tensor,
    valid: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """L_st: cross-entropy of the selected unlabelled predictions against their own argmax.

    Step 5 in docs/training.md. The labels are ``argmax G(x_u)`` without gradient; the loss is
    averaged over the (valid) pixels of the selected samples; no selected sample gives 0. Samples
    that are not selected get ignore labels, which gives the same value as cross-entropy on the
    selected subset without a host-device synchronisation.

    Args:
        logits: (B, C, H, W) generator scores for the unlabelled batch.
        selected: (B,) boolean, from :func:`select_confident`.
        valid: Optional (B, H, W) boolean, False at padded pixels (excluded).
        ignore_index: Label value used for excluded pixels.
    """
    keep = selected[:, None, None].expand(-1, *logits.shape[-2:])
    if valid is not None:
        keep = keep & valid
    return cross_entropy(logits, pseudo_labels(logits, keep, ignore_index), ignore_index)


def discriminator_loss(logit_fake: torch.Tensor, logit_real: torch.Tensor) -> torch.Tensor:
    """L_D = [BCE(D(p_u), 0) + BCE(D(onehot(y_g)), 1)] / 2 on logits (step 7 in docs/training.md).

    Uses BCE with logits (numerically stable; the same value as BCE on ``sigmoid(logit)``).

    Args:
        logit_fake: (B_u,) D's logits for the detached unlabelled predictions.
        logit_real: (B_g,) D's logits for the ground-truth inputs.
    """
    fake = F.binary_cross_entropy_with_logits(
        logit_fake.float(), torch.zeros_like(logit_fake, dtype=torch.float32)
    )
    real = F.binary_cross_entropy_with_logits(
        logit_real.float(), torch.ones_like(logit_real, dtype=torch.float32)
    )
    return (fake + real) / 2
