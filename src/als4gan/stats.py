"""Paired comparisons over seeds: is a difference between two grid cells real?

Two cells of a grid that share a seed share everything the seed sets (the random part of the
selection, the network initialisation, the data order), so the fair comparison is the
per-seed difference, not the difference of two means. :func:`paired_difference` gives its mean,
sample standard deviation, a 95 % Student-t confidence interval and the seed-by-seed tally.
The t quantile is computed here (exact closed form of the t distribution for integer degrees of
freedom) so that no statistics package is needed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

#: Confidence level of every interval.
CONFIDENCE = 0.95
#: Shown instead of an interval when there is a single pair.
NO_INTERVAL = "n = 1, no interval"


def _t_central_probability(t: float, dof: int) -> float:
    """``P(|T| < t)`` for Student's t with ``dof`` (integer) degrees of freedom.

    The closed form for integer degrees of freedom (Abramowitz & Stegun 26.7.3-4), with
    ``theta = atan(t / sqrt(dof))``.
    """
    theta = math.atan(t / math.sqrt(dof))
    cos2 = math.cos(theta) ** 2
    if dof % 2 == 1:
        total, term = 0.0, math.cos(theta)
        for k in range(1, (dof - 1) // 2 + 1):
            if k > 1:
                term *= cos2 * (2 * k - 2) / (2 * k - 1)
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * total)
    total, term = 1.0, 1.0
    for k in range(1, dof // 2):
        term *= cos2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total


def t_quantile(probability: float, dof: int) -> float:
    """The ``probability`` quantile of Student's t with ``dof`` degrees of freedom.

    Args:
        probability: In (0.5, 1), e.g. 0.975 for a two-sided 95 % interval.
        dof: Degrees of freedom, at least 1.

    Returns:
        ``t`` with ``P(T <= t) = probability`` (to about 1e-10), e.g. 12.706 for
        ``(0.975, 1)`` and 2.776 for ``(0.975, 4)``.

    Raises:
        ValueError: On a probability outside (0.5, 1) or fewer than 1 degree of freedom.
    """
    if not 0.5 < probability < 1:
        raise ValueError(f"probability must lie in (0.5, 1), got {probability}")
    if dof < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {dof}")
    central = 2 * probability - 1
    low, high = 0.0, 1.0
    while _t_central_probability(high, dof) < central:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if _t_central_probability(middle, dof) < central:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return (low + high) / 2


@dataclass(frozen=True)
class PairedDifference:
    """The per-seed difference ``a - b`` of two seed-aligned results.

    Attributes:
        seeds: The seeds both sides have, sorted (the pairs).
        differences: ``a[seed] - b[seed]`` for each of ``seeds``.
        mean: Mean difference.
        sd: Sample standard deviation of the differences (``None`` for one pair).
        ci_low: Lower end of the 95 % confidence interval of the mean (``None`` for one pair).
        ci_high: Upper end (``None`` for one pair).
        wins: Seeds where ``a`` was higher.
        losses: Seeds where ``a`` was lower.
        ties: Seeds where both were equal.
    """

    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    wins: int
    losses: int
    ties: int

    @property
    def n(self) -> int:
        """Number of pairs (seeds)."""
        return len(self.seeds)

    @property
    def significant(self) -> bool | None:
        """Whether the interval excludes 0 (``None`` when there is no interval)."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low > 0 or self.ci_high < 0

    @property
    def verdict(self) -> str:
        """``"significant"``, ``"not significant"`` or ``"n = 1, no interval"``."""
        significant = self.significant
        if significant is None:
            return NO_INTERVAL
        return "significant" if significant else "not significant"


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> PairedDifference:
    """Mean, spread, 95 % t interval and tally of ``a[seed] - b[seed]`` over shared seeds.

    Args:
        a: ``{seed: value}`` of the side being tested (e.g. a strategy).
        b: ``{seed: value}`` of the baseline (e.g. random at the same ratio and method).

    Returns:
        The paired difference over the seeds present in both.

    Raises:
        ValueError: If the two share no seed or a value is not a finite number.
    """
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        raise ValueError(f"no seed in common (seeds {sorted(a)} vs {sorted(b)}): nothing to pair")
    differences = tuple(float(a[seed]) - float(b[seed]) for seed in seeds)
    if not all(math.isfinite(value) for value in differences):
        raise ValueError(f"non-finite value in the paired results {differences}")
    mean = statistics.fmean(differences)
    sd: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    if len(seeds) > 1:
        sd = statistics.stdev(differences)
        half = t_quantile(0.5 + CONFIDENCE / 2, len(seeds) - 1) * sd / math.sqrt(len(seeds))
        ci_low, ci_high = mean - half, mean + half
    return PairedDifference(
        seeds=seeds,
        differences=differences,
        mean=mean,
        sd=sd,
        ci_low=ci_low,
        ci_high=ci_high,
        wins=sum(value > 0 for value in differences),
        losses=sum(value < 0 for value in differences),
        ties=sum(value == 0 for value in differences),
    )


__all__ = ["CONFIDENCE", "NO_INTERVAL", "PairedDifference", "paired_difference", "t_quantile"]
