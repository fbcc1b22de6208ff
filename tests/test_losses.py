import math

import pytest
import torch
import torch.nn.functional as F

from als4gan.train.losses import (
    DISCRIMINATOR_STAT_KEYS,
    cross_entropy,
    discriminator_loss,
    discriminator_record,
    discriminator_statistics,
    feature_matching_loss,
    fill_invalid,
    onehot_with_ignore,
    pseudo_labels,
    select_confident,
    self_training_loss,
)


def test_feature_matching_value_on_known_tensors() -> None:
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # batch mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]])  # batch mean (1, 1)
    # mean(|2 - 1|, |3 - 1|) = 1.5
    assert feature_matching_loss(real, fake).item() == pytest.approx(1.5)
    assert feature_matching_loss(real, real).item() == 0.0


def test_feature_matching_gradient_reaches_fake_features_only() -> None:
    real = torch.tensor([[1.0, 2.0]], requires_grad=False)
    fake = torch.tensor([[0.0, 5.0], [0.0, 5.0]], requires_grad=True)
    feature_matching_loss(real, fake).backward()
    assert fake.grad is not None
    # d/df of mean_j |r_j - mean_b f_bj| = -sign(r - f) / (F * B)
    assert torch.allclose(fake.grad, torch.tensor([[-0.25, 0.25], [-0.25, 0.25]]))


def test_cross_entropy_ignores_label_255() -> None:
    logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    target[0, :2] = 255
    expected = F.cross_entropy(logits, target, ignore_index=255)
    assert cross_entropy(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    # changing the logits of ignored pixels changes nothing
    altered = logits.clone()
    altered[0, :, :2] += 100.0
    assert cross_entropy(altered, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_cross_entropy_without_labels_is_zero_not_nan() -> None:
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = cross_entropy(logits, torch.full((1, 2, 2), 255))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and not logits.grad.any()


def test_cross_entropy_is_float32_under_bf16_logits() -> None:
    logits = torch.randn(1, 3, 2, 2).bfloat16()
    assert cross_entropy(logits, torch.zeros(1, 2, 2, dtype=torch.long)).dtype == torch.float32


def test_onehot_is_uniform_at_ignore_pixels() -> None:
    target = torch.tensor([[[0, 2], [255, 1]]])
    onehot = onehot_with_ignore(target, 4)
    assert onehot.shape == (1, 4, 2, 2)
    assert onehot[0, :, 0, 0].tolist() == [1, 0, 0, 0]
    assert onehot[0, :, 0, 1].tolist() == [0, 0, 1, 0]
    assert onehot[0, :, 1, 0].tolist() == [0.25] * 4
    # every pixel is a probability vector, like a softmax output
    assert torch.allclose(onehot.sum(dim=1), torch.ones(1, 2, 2))


def test_fill_invalid_sets_uniform_only_where_padded() -> None:
    probs = torch.softmax(torch.randn(1, 3, 2, 2), dim=1)
    valid = torch.tensor([[[True, False], [True, True]]])
    filled = fill_invalid(probs, valid)
    assert torch.allclose(filled[0, :, 0, 1], torch.full((3,), 1 / 3))
    assert torch.equal(filled[0, :, 0, 0], probs[0, :, 0, 0])


def test_self_training_selects_by_threshold() -> None:
    d_prob = torch.tensor([0.9, 0.5, 0.81, 0.8])
    assert select_confident(d_prob, 0.8).tolist() == [True, False, True, False]  # strictly above


def test_self_training_loss_is_ce_on_selected_samples_with_argmax_labels() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 5, 5, generator=generator, requires_grad=True)
    selected = torch.tensor([True, False, True])
    loss = self_training_loss(logits, selected)
    chosen = logits[selected]
    expected = F.cross_entropy(chosen, chosen.argmax(dim=1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert logits.grad is not None
    assert not logits.grad[1].any()  # unselected sample: no gradient
    assert logits.grad[0].abs().sum() > 0


def test_pseudo_labels_carry_no_gradient_and_respect_padding() -> None:
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    labels = pseudo_labels(logits, torch.tensor([[[True, False], [True, True]]]))
    assert not labels.requires_grad
    assert labels[0, 0, 1].item() == 255


def test_self_training_loss_without_selection_is_zero() -> None:
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = self_training_loss(logits, torch.tensor([False, False]))
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and not logits.grad.any()


def test_discriminator_targets_fake_zero_real_one() -> None:
    fake = torch.tensor([-2.0, 0.5])
    real = torch.tensor([1.5])
    expected = (
        F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(2))
        + F.binary_cross_entropy(torch.sigmoid(real), torch.ones(1))
    ) / 2
    assert discriminator_loss(fake, real).item() == pytest.approx(expected.item(), rel=1e-6)
    # a D that is right with confidence has a small loss; a fooled one a large loss
    assert discriminator_loss(torch.tensor([-20.0]), torch.tensor([20.0])).item() < 1e-6
    assert discriminator_loss(torch.tensor([20.0]), torch.tensor([-20.0])).item() > 19
    # at logit 0 (D undecided) both terms are log 2
    zero = discriminator_loss(torch.zeros(3), torch.zeros(3)).item()
    assert zero == pytest.approx(math.log(2))


def test_discriminator_loss_is_stable_for_extreme_logits() -> None:
    loss = discriminator_loss(torch.tensor([1e4]), torch.tensor([-1e4]))
    assert math.isfinite(loss.item())


def test_discriminator_statistics_match_hand_computed_values() -> None:
    d_real = torch.tensor([0.9, 0.7])
    d_fake = torch.tensor([0.2, 0.55, 0.65, 0.75, 0.85])
    stats = discriminator_statistics(d_real, d_fake, threshold=0.8)
    assert stats.dtype == torch.float64 and len(stats) == len(DISCRIMINATOR_STAT_KEYS)
    # sums: real 1.6 over 2, fake 3.0; above 0.5: 4, 0.6: 3, 0.7: 2, tau = 0.8: 1
    assert stats.tolist() == pytest.approx([1.6, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0])
    # two accumulation steps (or processes) add up before dividing
    other = discriminator_statistics(torch.tensor([0.5]), torch.tensor([0.95]), threshold=0.8)
    totals = dict(zip(DISCRIMINATOR_STAT_KEYS, (stats + other).tolist(), strict=True))
    record = discriminator_record(totals, judged=6.0)
    assert record == pytest.approx(
        {
            "d_real_mean": 2.1 / 3,
            "d_fake_mean": 3.95 / 6,
            "d_above_0.5": 5 / 6,
            "d_above_0.6": 4 / 6,
            "d_above_0.7": 3 / 6,
            "d_above_tau": 2 / 6,
        }
    )


def test_discriminator_statistics_count_strictly_above_each_level() -> None:
    stats = discriminator_statistics(torch.tensor([1.0]), torch.tensor([0.5, 0.6, 0.7]), 0.7)
    assert stats[3:].tolist() == [2.0, 1.0, 0.0, 0.0]
