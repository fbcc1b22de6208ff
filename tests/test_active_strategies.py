import numpy as np
import pytest
import torch

from als4gan.active.strategies import (
    STRATEGIES,
    PoolScores,
    build_strategy,
    class_balance_weights,
    k_center_greedy,
    rank_descending,
)
from als4gan.errors import ConfigError

# Rows chosen so that the correct ranking is known by hand.
CONFIDENT = [0.98, 0.01, 0.01]
UNIFORM = [1 / 3, 1 / 3, 1 / 3]
TWO_WAY = [0.5, 0.5, 0.0]
MOSTLY = [0.7, 0.2, 0.1]


def _ranking(name: str, probs: list[list[float]]) -> list[int]:
    strategy = build_strategy(name)
    scores = strategy.score(np.asarray(probs, dtype=np.float32))
    selection = strategy.select(PoolScores(size=len(probs), scores=scores), len(probs), seed=0)
    return selection.indices.tolist()


def test_entropy_ranks_uniform_first() -> None:
    # entropies: confident 0.112, uniform log 3 = 1.099, mostly 0.802, two-way log 2 = 0.693
    assert _ranking("entropy", [CONFIDENT, UNIFORM, MOSTLY, TWO_WAY]) == [1, 2, 3, 0]


def test_margin_ranks_two_way_ties_first() -> None:
    # margins: confident 0.97, uniform 0, mostly 0.5, two-way 0 -> tie broken by position
    assert _ranking("margin", [CONFIDENT, UNIFORM, MOSTLY, TWO_WAY]) == [1, 3, 2, 0]
    assert _ranking("margin", [CONFIDENT, TWO_WAY, MOSTLY, UNIFORM]) == [1, 3, 2, 0]


def test_least_confidence_uses_max_probability_only() -> None:
    # 1 - max: confident 0.02, uniform 0.667, mostly 0.3, two-way 0.5
    assert _ranking("least-confidence", [CONFIDENT, UNIFORM, MOSTLY, TWO_WAY]) == [1, 3, 2, 0]
    # entropy and least confidence disagree here: [0.5, 0.25, 0.25] vs [0.45, 0.55, 0]
    spread, pair = [0.5, 0.25, 0.25], [0.55, 0.45, 0.0]
    assert _ranking("least-confidence", [spread, pair]) == [0, 1]
    assert _ranking("entropy", [pair, spread]) == [1, 0]
    assert _ranking("margin", [spread, pair]) == [1, 0]


def test_reference_alias_uncertainty_is_least_confidence() -> None:
    assert build_strategy("uncertainty").name == "least-confidence"


def test_exact_scores() -> None:
    probs = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    assert np.allclose(build_strategy("entropy").score(probs), [np.log(2), 0.0])
    assert np.allclose(build_strategy("margin").score(probs), [0.0, -1.0])
    assert np.allclose(build_strategy("least-confidence").score(probs), [0.5, 0.0])


def test_ties_are_broken_by_pool_position() -> None:
    assert rank_descending(np.array([0.2, 0.5, 0.5, 0.1, 0.5])).tolist() == [1, 2, 4, 0, 3]
    probs = np.asarray([UNIFORM] * 5, dtype=np.float32)
    assert _ranking("entropy", probs.tolist()) == [0, 1, 2, 3, 4]


def test_bald_prefers_disagreement_over_agreed_uncertainty() -> None:
    # image 0: every pass says 50/50 (aleatoric, BALD ~ 0)
    # image 1: passes disagree confidently (epistemic, BALD = log 2)
    # image 2: passes agree confidently (BALD 0)
    samples = torch.tensor(
        [
            [[0.5, 0.5], [1.0, 0.0], [1.0, 0.0]],
            [[0.5, 0.5], [0.0, 1.0], [1.0, 0.0]],
        ]
    )
    strategy = build_strategy("bald")
    scores = strategy.score(samples)
    assert scores[1] == pytest.approx(np.log(2), abs=1e-6)
    assert scores[0] == pytest.approx(0.0, abs=1e-6)
    assert scores[2] == pytest.approx(0.0, abs=1e-6)
    selection = strategy.select(PoolScores(size=3, scores=scores), 1, seed=0)
    assert selection.indices.tolist() == [1]
    # entropy of the mean cannot tell images 0 and 1 apart
    entropy = build_strategy("entropy").score(samples.mean(dim=0))
    assert entropy[0] == pytest.approx(entropy[1])


def test_pixel_maps_are_reduced_by_mean() -> None:
    # (N=2, C=2, H=2, W=2): image 0 has one uncertain pixel, image 1 has three
    certain, unsure = [1.0, 0.0], [0.5, 0.5]
    image0 = [unsure, certain, certain, certain]
    image1 = [unsure, unsure, unsure, certain]
    probs = torch.tensor([image0, image1]).reshape(2, 2, 2, 2).permute(0, 3, 1, 2)
    scores = build_strategy("entropy").score(probs)
    assert scores == pytest.approx([np.log(2) / 4, 3 * np.log(2) / 4])


def test_class_balanced_reduction_up_weights_rare_predicted_classes() -> None:
    # two images with the same mean uncertainty; image 1's uncertain pixels are predicted rare
    common, rare = [0.6, 0.4], [0.4, 0.6]
    probs = torch.tensor([[common] * 4, [rare] * 4]).reshape(2, 2, 2, 2).permute(0, 3, 1, 2)
    plain = build_strategy("entropy").score(probs)
    assert plain[0] == pytest.approx(plain[1])
    weights = class_balance_weights([990, 10], power=0.5)
    balanced = build_strategy("entropy", reduction="class-balanced", class_weights=weights)
    scores = balanced.score(probs)
    assert scores[1] > 5 * scores[0]
    assert _top(balanced, probs) == 1


def _top(strategy: object, probs: torch.Tensor) -> int:
    scores = strategy.score(probs)  # type: ignore[attr-defined]
    return int(rank_descending(scores)[0])


def test_class_balance_weights_keep_the_usual_mix_neutral() -> None:
    counts = np.array([600.0, 300.0, 90.0, 10.0])
    weights = class_balance_weights(counts, power=1.0)
    shares = counts / counts.sum()
    assert float((shares * weights).sum()) == pytest.approx(1.0)
    assert np.all(np.diff(weights) > 0)  # rarer -> heavier
    # an unseen class gets a finite weight (floored share)
    assert np.isfinite(class_balance_weights([5, 0], power=1.0)).all()


def test_class_balanced_needs_weights() -> None:
    strategy = build_strategy("entropy", reduction="class-balanced")
    with pytest.raises(ValueError, match="class weights"):
        strategy.score(torch.tensor([[0.5, 0.5]]))


def test_image_level_class_balanced_multiplies_by_predicted_class_weight() -> None:
    strategy = build_strategy("least-confidence", reduction="class-balanced")
    strategy.set_class_weights([1.0, 3.0])
    scores = strategy.score(torch.tensor([[0.6, 0.4], [0.4, 0.6]]))
    assert scores == pytest.approx([0.4, 1.2])


def test_sanity_checks_reject_logits_and_nan() -> None:
    strategy = build_strategy("entropy")
    with pytest.raises(ValueError, match="sum to 1"):
        strategy.score(torch.tensor([[2.0, -1.0, 0.5]]).abs())
    with pytest.raises(ValueError, match="non-negative"):
        strategy.score(torch.tensor([[1.5, -0.5]]))
    with pytest.raises(ValueError, match="NaN"):
        strategy.score(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        strategy.score(torch.tensor([[1.0]]))
    with pytest.raises(ValueError, match="dimensions"):
        build_strategy("bald").score(torch.tensor([[0.5, 0.5]]))


def test_random_is_reproducible_and_needs_no_model() -> None:
    strategy = build_strategy("random")
    assert not strategy.needs_model
    first = strategy.select(PoolScores(size=100), 10, seed=7)
    again = strategy.select(PoolScores(size=100), 10, seed=7)
    other = strategy.select(PoolScores(size=100), 10, seed=8)
    assert first.indices.tolist() == again.indices.tolist()
    assert first.indices.tolist() != other.indices.tolist()
    assert len(set(first.indices.tolist())) == 10
    assert np.all(np.diff(first.scores) <= 0)


def test_random_picks_are_roughly_uniform() -> None:
    strategy = build_strategy("random")
    counts = np.zeros(10)
    for seed in range(2000):
        counts[strategy.select(PoolScores(size=10), 1, seed=seed).indices] += 1
    assert counts.min() > 140 and counts.max() < 260


def test_k_center_greedy_covers_far_points_first() -> None:
    # points on a line; the labelled centre is at 0
    points = np.array([[1.0], [2.0], [10.0], [9.0], [5.0]], dtype=np.float16)
    picks, distances = k_center_greedy(points, np.array([[0.0]]), 3)
    assert picks.tolist() == [2, 4, 1]  # 10 (dist 10), then 5 (dist 5), then 2 (dist 2 to 0)
    assert distances.tolist() == pytest.approx([10.0, 5.0, 2.0])


def test_k_center_greedy_chunking_and_duplicates() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 8)).astype(np.float32)
    centres = rng.normal(size=(700, 8)).astype(np.float32)
    small, _ = k_center_greedy(points, centres, 20, chunk=7)
    large, _ = k_center_greedy(points, centres, 20, chunk=1000)
    assert small.tolist() == large.tolist()
    duplicates = np.zeros((5, 3), dtype=np.float32)
    picks, _ = k_center_greedy(duplicates, None, 5)
    assert sorted(picks.tolist()) == [0, 1, 2, 3, 4]


def test_coreset_selects_by_diversity() -> None:
    strategy = build_strategy("coreset")
    embeddings = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]], dtype=np.float16)
    pool = PoolScores(size=4, embeddings=embeddings, labelled_embeddings=np.array([[0.0, 0.1]]))
    assert strategy.select(pool, 2, seed=0).indices.tolist() == [3, 1]


def test_hybrid_takes_diverse_subset_of_uncertain_candidates() -> None:
    strategy = build_strategy("hybrid", factor=2.0)
    # four most uncertain are 0..3; 0 and 1 are near-duplicates, 2 and 3 too
    scores = np.array([0.9, 0.89, 0.8, 0.79, 0.1, 0.05])
    embeddings = np.array([[0, 0], [0, 0.01], [9, 9], [9, 9.01], [50, 50], [-50, 0]], np.float32)
    pool = PoolScores(
        size=6, scores=scores, embeddings=embeddings, labelled_embeddings=np.array([[4.0, 4.0]])
    )
    selection = strategy.select(pool, 2, seed=0)
    assert sorted(selection.indices.tolist()) in ([0, 2], [0, 3], [1, 2], [1, 3])
    assert 4 not in selection.indices and 5 not in selection.indices  # far but certain
    assert selection.scores.tolist() == scores[selection.indices].tolist()
    # pure uncertainty would take the two near-duplicates
    top = build_strategy("entropy").select(PoolScores(size=6, scores=scores), 2, seed=0)
    assert top.indices.tolist() == [0, 1]


def test_hybrid_with_bald_needs_mc_samples() -> None:
    assert build_strategy("hybrid", uncertainty="bald").needs_mc_samples
    assert not build_strategy("hybrid").needs_mc_samples


def test_registry_lists_valid_names() -> None:
    assert set(STRATEGIES) == {
        "random",
        "entropy",
        "margin",
        "least-confidence",
        "bald",
        "coreset",
        "hybrid",
        "typiclust",
        "probcover",
    }
    with pytest.raises(ConfigError) as info:
        build_strategy("maximum-fun")
    assert "random, entropy, margin, least-confidence, bald, coreset, hybrid" in str(info.value)
    with pytest.raises(ConfigError, match="reduction"):
        build_strategy("entropy", reduction="median")
    with pytest.raises(ConfigError, match="uncertainty strategy"):
        build_strategy("hybrid", uncertainty="coreset")
