"""Query strategies (higher score = labelled first), as small classes in an explicit registry.

Following baal's heuristics, a strategy implements only its score
(:meth:`QueryStrategy.compute`: class probabilities -> uncertainty per image or per pixel).
The base class owns the rest: sanity checks on the probabilities, the reduction of pixel maps
to one score per image (``mean``, or ``class-balanced``, which up-weights pixels predicted as
rare classes), and ranking with deterministic tie-breaking (equal scores -> earlier pool
position first). Diversity strategies (core-set, hybrid) override :meth:`QueryStrategy.select`,
which sees the whole pool's scores and embeddings.

Shapes: image-level probabilities are ``(N, C)``, pixel-level ``(N, C, H, W)``; BALD takes
Monte-Carlo samples ``(T, N, C[, H, W])``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from als4gan.active.ranking import class_balance_weights, k_center_greedy, rank_descending
from als4gan.errors import ConfigError

__all__ = [
    "LOW_BUDGET_STRATEGIES",
    "REDUCTIONS",
    "STRATEGIES",
    "STRATEGY_ALIASES",
    "PoolScores",
    "QueryStrategy",
    "Selection",
    "build_strategy",
    "class_balance_weights",
    "k_center_greedy",
    "rank_descending",
    "resolve_strategy_name",
]

#: Pixel-to-image reductions understood by :meth:`QueryStrategy.reduce`.
REDUCTIONS: tuple[str, ...] = ("mean", "class-balanced")

#: Tolerance on "probabilities sum to one" (bf16 autocast outputs are cast back to fp32).
_SUM_TOLERANCE = 1e-2


@dataclass
class PoolScores:
    """What the acquisition model produced for the unlabelled pool (one row per image).

    Attributes:
        scores: Uncertainty scores ``(N,)`` (``None`` for strategies that need none).
        embeddings: Embedding vectors of the unlabelled images ``(N, D)`` (float16/float32).
        labelled_embeddings: Embeddings of the already labelled images ``(L, D)``.
    """

    size: int
    scores: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    labelled_embeddings: np.ndarray | None = None


@dataclass
class Selection:
    """The images a strategy picked.

    Attributes:
        indices: Positions in the unlabelled pool, in the order they were picked.
        scores: The strategy's score of each pick (uncertainty, or core-set distance).
    """

    indices: np.ndarray
    scores: np.ndarray


def _check_probs(probs: torch.Tensor, class_dim: int, what: str) -> None:
    """Raise ``ValueError`` unless ``probs`` are finite, non-negative and sum to one."""
    if probs.ndim < class_dim + 1:
        raise ValueError(
            f"{what}: expected at least {class_dim + 1} dimensions "
            f"({'(T, N, C)' if class_dim == 2 else '(N, C)'}), got shape {tuple(probs.shape)}"
        )
    if probs.shape[class_dim] < 2:
        raise ValueError(f"{what}: need at least 2 classes, got shape {tuple(probs.shape)}")
    if not bool(torch.isfinite(probs).all()):
        raise ValueError(f"{what}: probabilities contain NaN or infinity")
    if bool((probs < 0).any()):
        raise ValueError(f"{what}: probabilities must be non-negative (pass softmax outputs)")
    sums = probs.sum(dim=class_dim)
    if bool(((sums - 1).abs() > _SUM_TOLERANCE).any()):
        raise ValueError(
            f"{what}: probabilities must sum to 1 over the class dimension (pass softmax "
            "outputs, not logits)"
        )


class QueryStrategy:
    """Base class: sanity checks, pixel-to-image reduction, ranking and top-k selection.

    Args:
        reduction: ``mean`` or ``class-balanced`` (for pixel maps; image-level scores are
            multiplied by the weight of their predicted class).
        class_weights: Per-class weights for ``class-balanced`` (see
            :func:`class_balance_weights`); set per round with :meth:`set_class_weights`.
    """

    name: ClassVar[str] = "base"
    #: Whether an acquisition model must be trained and run over the pool.
    needs_model: bool = True
    #: Whether Monte-Carlo dropout samples ``(T, N, C, ...)`` are scored instead of ``(N, C, ...)``.
    needs_mc_samples: bool = False
    #: Whether embeddings of the pool (and the labelled set) are needed.
    needs_embeddings: bool = False
    #: Whether :meth:`score` is meaningful (uncertainty strategies).
    needs_scores: bool = True
    #: Options of :func:`build_strategy` this class takes besides the base class's.
    extra_options: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, reduction: str = "mean", class_weights: Sequence[float] | np.ndarray | None = None
    ) -> None:
        if reduction not in REDUCTIONS:
            raise ConfigError(
                f"unknown reduction '{reduction}'. Choose one of: {', '.join(REDUCTIONS)}"
            )
        self.reduction = reduction
        self.class_weights: np.ndarray | None = None
        if class_weights is not None:
            self.set_class_weights(class_weights)

    # ------------------------------------------------------------------ to implement
    def compute(self, probs: torch.Tensor) -> torch.Tensor:
        """Uncertainty per image or pixel: ``(N, C, *S)`` -> ``(N, *S)`` (higher = more useful)."""
        raise NotImplementedError(f"strategy '{self.name}' does not score probabilities")

    # ------------------------------------------------------------------ provided
    def set_class_weights(self, weights: Sequence[float] | np.ndarray) -> None:
        """Set the per-class weights of the ``class-balanced`` reduction."""
        array = np.asarray(weights, dtype=np.float64)
        if array.ndim != 1 or not np.isfinite(array).all() or (array < 0).any():
            raise ValueError("class weights must be a 1-D array of finite non-negative numbers")
        self.class_weights = array

    def mean_probs(self, probs: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(N, C, *S)`` used for the predicted class (MC samples averaged)."""
        return probs.mean(dim=0) if self.needs_mc_samples else probs

    def score(self, probs: torch.Tensor | np.ndarray) -> np.ndarray:
        """One score per image: check, :meth:`compute`, then :meth:`reduce`.

        Args:
            probs: Softmax outputs ``(N, C[, H, W])`` (or ``(T, N, C[, H, W])`` for BALD).

        Returns:
            ``(N,)`` float64 scores.

        Raises:
            ValueError: If the probabilities are malformed.
        """
        tensor = torch.as_tensor(probs).float()
        class_dim = 2 if self.needs_mc_samples else 1
        _check_probs(tensor, class_dim, f"strategy '{self.name}'")
        uncertainty = self.compute(tensor)
        scores = self.reduce(uncertainty, self.mean_probs(tensor))
        result = scores.double().cpu().numpy()
        if not np.isfinite(result).all():
            raise ValueError(f"strategy '{self.name}' produced non-finite scores")
        return result

    def reduce(self, uncertainty: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Reduce ``(N, *S)`` uncertainty to ``(N,)``: plain or class-weighted mean.

        Args:
            uncertainty: Per-image ``(N,)`` or per-pixel ``(N, H, W)`` scores.
            probs: Class probabilities ``(N, C, *S)`` giving each pixel's predicted class.
        """
        if self.reduction == "class-balanced":
            if self.class_weights is None:
                raise ValueError(
                    "the class-balanced reduction needs class weights (set_class_weights)"
                )
            if self.class_weights.shape[0] != probs.shape[1]:
                raise ValueError(
                    f"{self.class_weights.shape[0]} class weights for {probs.shape[1]} classes"
                )
            weights = torch.as_tensor(self.class_weights, dtype=torch.float32)
            uncertainty = uncertainty * weights[probs.argmax(dim=1)]
        return uncertainty.reshape(uncertainty.shape[0], -1).mean(dim=1)

    def select(self, pool: PoolScores, k: int, seed: int) -> Selection:
        """Pick ``k`` images of the unlabelled pool (default: the top-``k`` scores).

        Args:
            pool: Scores / embeddings of the unlabelled images.
            k: Number to pick (at most ``pool.size``).
            seed: Seed for strategies with randomness.
        """
        if pool.scores is None:
            raise ValueError(f"strategy '{self.name}' needs scores for the pool")
        scores = np.asarray(pool.scores, dtype=np.float64)
        if scores.shape != (pool.size,):
            raise ValueError(f"expected {pool.size} scores, got shape {scores.shape}")
        if not np.isfinite(scores).all():
            raise ValueError(f"strategy '{self.name}': pool scores contain NaN or infinity")
        order = rank_descending(scores)[: min(k, pool.size)]
        return Selection(indices=order, scores=scores[order])


class RandomStrategy(QueryStrategy):
    """Uniform random choice (the paper's baseline); no acquisition model is trained."""

    name = "random"
    needs_model = False
    needs_scores = False

    def random_scores(self, size: int, seed: int) -> np.ndarray:
        """Uniform scores in [0, 1) drawn from ``seed`` alone."""
        return np.random.default_rng(seed).random(size)

    def select(self, pool: PoolScores, k: int, seed: int) -> Selection:
        """The ``k`` images with the highest uniform random scores."""
        scores = self.random_scores(pool.size, seed)
        order = rank_descending(scores)[: min(k, pool.size)]
        return Selection(indices=order, scores=scores[order])


class EntropyStrategy(QueryStrategy):
    """Predictive entropy ``-sum_c p_c log p_c`` (docs/method.md)."""

    name = "entropy"

    def compute(self, probs: torch.Tensor) -> torch.Tensor:
        """Entropy over the class dimension."""
        entropy: torch.Tensor = -torch.special.xlogy(probs, probs).sum(dim=1)
        return entropy


class MarginStrategy(QueryStrategy):
    """Negative margin ``-(p_top1 - p_top2)`` (docs/method.md): a small margin is asked first."""

    name = "margin"

    def compute(self, probs: torch.Tensor) -> torch.Tensor:
        """Minus the gap between the two most likely classes."""
        top2 = probs.topk(2, dim=1).values
        return -(top2[:, 0] - top2[:, 1])


class LeastConfidenceStrategy(QueryStrategy):
    """Least confidence ``1 - max_c p_c`` (the paper's; modAL's ``uncertainty_sampling``)."""

    name = "least-confidence"

    def compute(self, probs: torch.Tensor) -> torch.Tensor:
        """One minus the largest probability."""
        return 1.0 - probs.max(dim=1).values


class BALDStrategy(QueryStrategy):
    """BALD with Monte-Carlo dropout (Houlsby 2011; Gal 2017).

    Mutual information between prediction and weights, estimated from ``T`` stochastic
    passes: ``H(mean_t p_t) - mean_t H(p_t)``. High when the passes disagree, not merely when
    each pass is unsure.
    """

    name = "bald"
    needs_mc_samples = True

    def compute(self, probs: torch.Tensor) -> torch.Tensor:
        """Mutual information from MC samples ``(T, N, C, *S)``."""
        mean = probs.mean(dim=0)
        entropy_of_mean = -torch.special.xlogy(mean, mean).sum(dim=1)
        mean_entropy = -torch.special.xlogy(probs, probs).sum(dim=2).mean(dim=0)
        information: torch.Tensor = (entropy_of_mean - mean_entropy).clamp_min(0.0)
        return information


class CoreSetStrategy(QueryStrategy):
    """Core-set: k-centre greedy on the acquisition model's embeddings (diversity only)."""

    name = "coreset"
    needs_embeddings = True
    needs_scores = False

    def select(self, pool: PoolScores, k: int, seed: int) -> Selection:
        """The ``k`` images that best cover the embedding space left uncovered."""
        if pool.embeddings is None:
            raise ValueError("the core-set strategy needs embeddings of the pool")
        indices, distances = k_center_greedy(pool.embeddings, pool.labelled_embeddings, k)
        return Selection(indices=indices, scores=distances)


class HybridStrategy(QueryStrategy):
    """Uncertainty first, then diversity.

    The top ``factor x k`` uncertain candidates are narrowed to ``k`` by k-centre greedy on
    their embeddings.

    Uncertainty alone tends to pick near-duplicates (all the hardest scenes look alike);
    diversity alone ignores what the model finds hard. The recorded score of a pick is its
    uncertainty.

    Args:
        uncertainty: Name of the uncertainty strategy (entropy, margin, least-confidence, bald).
        factor: Candidates kept per image to pick (>= 1).
        reduction: See :class:`QueryStrategy`.
        class_weights: See :class:`QueryStrategy`.
    """

    name = "hybrid"
    needs_embeddings = True
    extra_options = ("uncertainty", "factor")

    def __init__(
        self,
        uncertainty: str = "entropy",
        factor: float = 4.0,
        reduction: str = "mean",
        class_weights: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        super().__init__(reduction, class_weights)
        inner_cls = STRATEGIES.get(resolve_strategy_name(uncertainty))
        if inner_cls is None or not inner_cls.needs_scores or inner_cls.needs_embeddings:
            valid = [n for n, c in STRATEGIES.items() if c.needs_scores and not c.needs_embeddings]
            raise ConfigError(
                f"hybrid: unknown uncertainty strategy '{uncertainty}'. "
                f"Choose one of: {', '.join(valid)}"
            )
        if not factor >= 1:
            raise ConfigError(f"hybrid: the candidate factor must be >= 1, got {factor}")
        self.inner = inner_cls(reduction=reduction)
        self.factor = float(factor)
        self.needs_mc_samples = self.inner.needs_mc_samples
        if class_weights is not None:
            self.inner.set_class_weights(class_weights)

    def set_class_weights(self, weights: Sequence[float] | np.ndarray) -> None:
        """Forward the weights to the inner strategy too."""
        super().set_class_weights(weights)
        if hasattr(self, "inner"):
            self.inner.set_class_weights(weights)

    def score(self, probs: torch.Tensor | np.ndarray) -> np.ndarray:
        """The inner strategy's uncertainty score."""
        return self.inner.score(probs)

    def select(self, pool: PoolScores, k: int, seed: int) -> Selection:
        """Top uncertain candidates, then k-centre greedy among them."""
        if pool.scores is None or pool.embeddings is None:
            raise ValueError("the hybrid strategy needs scores and embeddings of the pool")
        scores = np.asarray(pool.scores, dtype=np.float64)
        candidates = rank_descending(scores)[: min(pool.size, math.ceil(self.factor * k))]
        picks, _ = k_center_greedy(pool.embeddings[candidates], pool.labelled_embeddings, k)
        chosen = candidates[picks]
        return Selection(indices=chosen, scores=scores[chosen])


class _LowBudgetStrategy(QueryStrategy):
    """Base of the strategies on fixed pretrained embeddings (no acquisition model)."""

    needs_model = False
    needs_scores = False
    needs_embeddings = True
    extra_options = ("num_classes",)

    def __init__(self, num_classes: int = 2, **options: Any) -> None:
        super().__init__(**options)
        self.num_classes = num_classes
        #: What the last :meth:`select` decided (clusters, delta, coverage...).
        self.details: dict[str, Any] = {}

    def pick(self, points: np.ndarray, labelled: np.ndarray, k: int, seed: int) -> Any:
        """Pick ``k`` rows of the whole pool ``points`` (``labelled``: boolean mask)."""
        raise NotImplementedError

    def select(self, pool: PoolScores, k: int, seed: int) -> Selection:
        """Pick among the unlabelled embeddings, the labelled ones counting as chosen."""
        if pool.embeddings is None:
            raise ValueError(f"the {self.name} strategy needs embeddings of the pool")
        unlabelled = np.asarray(pool.embeddings)
        known = pool.labelled_embeddings
        before = 0 if known is None else len(known)
        points = unlabelled if not before else np.concatenate([np.asarray(known), unlabelled])
        mask = np.zeros(len(points), dtype=bool)
        mask[:before] = True
        result = self.pick(points, mask, k, seed)
        self.details = result.details
        return Selection(indices=result.indices - before, scores=result.scores)


class TypiClustStrategy(_LowBudgetStrategy):
    """TypiClust (Hacohen et al. 2022): the most typical image of each uncovered cluster."""

    name = "typiclust"

    def pick(self, points: np.ndarray, labelled: np.ndarray, k: int, seed: int) -> Any:
        """See :func:`als4gan.active.typical.typiclust`."""
        from als4gan.active.typical import typiclust

        return typiclust(points, labelled, k, seed)


class ProbCoverStrategy(_LowBudgetStrategy):
    """ProbCover (Yehuda et al. 2022): greedy coverage of delta-balls, delta by purity."""

    name = "probcover"

    def pick(self, points: np.ndarray, labelled: np.ndarray, k: int, seed: int) -> Any:
        """Choose delta by the purity rule, then :func:`als4gan.active.typical.probcover`."""
        from als4gan.active.typical import probcover, purity_delta

        delta, record = purity_delta(points, self.num_classes, seed)
        result = probcover(points, labelled, k, seed, delta=delta)
        result.details = {**result.details, "delta_choice": record}
        return result


#: Strategies that need no trained model: they read pretrained embeddings (docs/selection.md).
LOW_BUDGET_STRATEGIES: tuple[str, ...] = ("typiclust", "probcover")

#: Strategy name -> class. ``higher score = labelled first`` for all of them.
STRATEGIES: dict[str, type[QueryStrategy]] = {
    "random": RandomStrategy,
    "entropy": EntropyStrategy,
    "margin": MarginStrategy,
    "least-confidence": LeastConfidenceStrategy,
    "bald": BALDStrategy,
    "coreset": CoreSetStrategy,
    "hybrid": HybridStrategy,
    "typiclust": TypiClustStrategy,
    "probcover": ProbCoverStrategy,
}

#: Other spellings accepted, e.g. the reference code's ``uncertainty`` (= least confidence).
STRATEGY_ALIASES: dict[str, str] = {
    "uncertainty": "least-confidence",
    "least_confidence": "least-confidence",
    "core-set": "coreset",
}


def resolve_strategy_name(name: str) -> str:
    """The registry name of ``name`` (aliases resolved)."""
    return STRATEGY_ALIASES.get(name, name)


def build_strategy(name: str, **options: Any) -> QueryStrategy:
    """Create strategy ``name``.

    Args:
        name: A key of :data:`STRATEGIES` (or an alias in :data:`STRATEGY_ALIASES`).
        **options: ``reduction``, ``class_weights``; for ``hybrid`` also ``uncertainty`` and
            ``factor``; for ``typiclust`` and ``probcover`` also ``num_classes``. Options a
            strategy does not take are ignored.

    Raises:
        ConfigError: If ``name`` is unknown (the message lists the valid names).
    """
    key = resolve_strategy_name(name)
    if key not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{name}'. Choose one of: {', '.join(STRATEGIES)}")
    cls = STRATEGIES[key]
    accepted = {"reduction", "class_weights", *cls.extra_options}
    return cls(**{k: v for k, v in options.items() if k in accepted})
