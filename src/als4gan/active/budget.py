"""Budget arithmetic of active selection: how many images are labelled, and in which rounds.

Stage 1 of docs/method.md, exactly:

* budget ``B = ceil(R x N)`` for a labelled ratio ``R`` of a pool of ``N`` images (or ``B`` given);
* initial random set ``n0 = max(1, floor(alpha x B))``;
* query size ``q = max(1, ceil(beta x n0))``;
* query rounds until exactly ``B`` images are labelled, the last round smaller when needed.

Ratios are taken as the decimal numbers the user typed (``0.07`` is exactly 7/100), so the
products never suffer from binary rounding: with floats, ``ceil(0.07 * 100)`` would be 8, not 7,
because ``0.07 * 100 == 7.000000000000001``, and ``floor(0.7 * 90)`` would be 62, not 63.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from als4gan.errors import BudgetError, ConfigError
from als4gan.ratios import exact_fraction, ratio_budget

__all__ = ["BudgetPlan", "exact_fraction", "plan_budget"]


def _check_unit_interval(value: float, name: str, flag: str) -> Fraction:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{flag} must lie in (0, 1], got {value}")
    fraction = exact_fraction(value, name)
    if not 0 < fraction <= 1:
        raise ConfigError(f"{flag} must lie in (0, 1], got {value}")
    return fraction


@dataclass(frozen=True)
class BudgetPlan:
    """How many images are labelled and when.

    Attributes:
        pool_size: ``N``, images in the pool.
        budget: ``B``, images labelled in total.
        labeled_ratio: ``R`` when the budget came from a ratio, else ``None``.
        alpha: Share of the budget drawn at random first.
        beta: Query size relative to the initial set.
        initial_size: ``n0 = max(1, floor(alpha x B))``.
        query_size: ``q = max(1, ceil(beta x n0))``.
        round_sizes: Images queried in each round after the initial set (all ``q`` except
            possibly the last, which takes what remains); empty when ``n0 == B``.
    """

    pool_size: int
    budget: int
    labeled_ratio: float | None
    alpha: float
    beta: float
    initial_size: int
    query_size: int
    round_sizes: tuple[int, ...]

    @property
    def num_rounds(self) -> int:
        """Number of query rounds (the initial random draw is not counted)."""
        return len(self.round_sizes)

    def labeled_after(self, round_index: int) -> int:
        """Images labelled once round ``round_index`` finished (0 = after the initial draw)."""
        return self.initial_size + sum(self.round_sizes[:round_index])

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for ``selection.json``)."""
        data = asdict(self)
        data["round_sizes"] = list(self.round_sizes)
        data["num_rounds"] = self.num_rounds
        return data

    def describe(self) -> str:
        """One line a user can check by hand."""
        source = (
            f"B = ceil({self.labeled_ratio} x {self.pool_size}) = {self.budget}"
            if self.labeled_ratio is not None
            else f"B = {self.budget} of {self.pool_size}"
        )
        rounds = (
            f"{self.num_rounds} round(s) of {self.query_size}"
            + (
                f" (last {self.round_sizes[-1]})"
                if self.round_sizes and self.round_sizes[-1] != self.query_size
                else ""
            )
            if self.round_sizes
            else "no query round"
        )
        return (
            f"{source}; n0 = max(1, floor({self.alpha} x {self.budget})) = {self.initial_size}; "
            f"q = max(1, ceil({self.beta} x {self.initial_size})) = {self.query_size}; {rounds}"
        )


def _checked_inputs(
    pool_size: int,
    labeled_ratio: float | None,
    budget: int | None,
    alpha: float,
    beta: float,
) -> tuple[Fraction, Fraction, int]:
    """Validate the inputs of :func:`plan_budget`: (exact alpha, exact beta, budget ``B``)."""
    if pool_size <= 0:
        raise BudgetError(
            "the pool is empty: the split lists no images to choose from. Check --root/--split "
            "(e.g. 'als4gan data --root DIR' shows the splits and their sizes)."
        )
    if (labeled_ratio is None) == (budget is None):
        raise ConfigError(
            "give exactly one of --labeled-ratio R (budget = ceil(R x pool size)) and "
            "--budget N (images to label)"
        )
    alpha_fraction = _check_unit_interval(alpha, "alpha", "--alpha")
    beta_fraction = _check_unit_interval(beta, "beta", "--beta")
    if labeled_ratio is not None:
        ratio = _check_unit_interval(labeled_ratio, "labeled_ratio", "--labeled-ratio")
        total = ratio_budget(ratio, pool_size)
    else:
        assert budget is not None
        if isinstance(budget, bool) or int(budget) != budget or budget < 1:
            raise ConfigError(f"--budget must be a whole number of images >= 1, got {budget}")
        total = int(budget)
    if total > pool_size:
        raise BudgetError(
            f"the budget B = {total} images exceeds the pool of {pool_size} images. Lower "
            "--budget, or use a larger split."
        )
    return alpha_fraction, beta_fraction, total


def plan_budget(
    pool_size: int,
    *,
    labeled_ratio: float | None = None,
    budget: int | None = None,
    alpha: float = 0.1,
    beta: float = 0.5,
) -> BudgetPlan:
    """Compute the budget, the initial set size, the query size and the round sizes.

    Exactly one of ``labeled_ratio`` and ``budget`` is given.

    Args:
        pool_size: ``N``, number of images in the pool.
        labeled_ratio: ``R`` in (0, 1]; ``B = ceil(R x N)``.
        budget: ``B`` directly (1..N).
        alpha: In (0, 1]; ``n0 = max(1, floor(alpha x B))``.
        beta: In (0, 1]; ``q = max(1, ceil(beta x n0))``.

    Returns:
        The plan.

    Raises:
        BudgetError: If the pool is empty or ``B`` exceeds it.
        ConfigError: If ``R``, ``alpha`` or ``beta`` lies outside (0, 1], both or neither of
            ``labeled_ratio`` and ``budget`` are given, or ``budget < 1``.
    """
    alpha_fraction, beta_fraction, total = _checked_inputs(
        pool_size, labeled_ratio, budget, alpha, beta
    )
    initial = max(1, math.floor(alpha_fraction * total))
    query = max(1, math.ceil(beta_fraction * initial))
    remaining = total - initial
    full_rounds, last = divmod(remaining, query)
    sizes = (query,) * full_rounds + ((last,) if last else ())
    return BudgetPlan(
        pool_size=pool_size,
        budget=total,
        labeled_ratio=float(labeled_ratio) if labeled_ratio is not None else None,
        alpha=float(alpha),
        beta=float(beta),
        initial_size=initial,
        query_size=query,
        round_sizes=sizes,
    )
