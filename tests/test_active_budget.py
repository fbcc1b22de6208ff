import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from als4gan.active.budget import plan_budget
from als4gan.errors import BudgetError, ConfigError


def _reference(n: int, r: str, alpha: str, beta: str) -> tuple[int, int, int]:
    """The issue's formulas in exact decimal arithmetic, written independently."""
    budget = math.ceil(Fraction(r) * n)
    n0 = max(1, math.floor(Fraction(alpha) * budget))
    q = max(1, math.ceil(Fraction(beta) * n0))
    return budget, n0, q


RATIOS = ["0.02", "0.05", "0.1", "0.125", "0.3", "0.5", "1"]
ALPHAS = ["0.01", "0.1", "0.25", "0.5", "0.9", "1"]
BETAS = ["0.1", "0.5", "0.9", "1"]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 22, 100, 1679, 1680])
def test_plan_matches_formulas_and_sums_to_budget(n: int) -> None:
    for r, alpha, beta in itertools.product(RATIOS, ALPHAS, BETAS):
        plan = plan_budget(n, labeled_ratio=float(r), alpha=float(alpha), beta=float(beta))
        budget, n0, q = _reference(n, r, alpha, beta)
        assert (plan.budget, plan.initial_size, plan.query_size) == (budget, n0, q)
        assert plan.initial_size + sum(plan.round_sizes) == plan.budget
        assert all(size == q for size in plan.round_sizes[:-1])
        assert all(1 <= size <= q for size in plan.round_sizes)
        assert 1 <= plan.budget <= n
        assert plan.labeled_after(plan.num_rounds) == plan.budget


def test_random_property_many_cases() -> None:
    rng = np.random.default_rng(0)
    for _ in range(3000):
        n = int(rng.integers(1, 5000))
        if rng.random() < 0.5:
            budget = int(rng.integers(1, n + 1))
            kwargs: dict[str, float | int] = {"budget": budget}
        else:
            kwargs = {"labeled_ratio": round(float(rng.uniform(0.001, 1.0)), 3) or 0.001}
        alpha = round(float(rng.uniform(0.001, 1.0)), 3) or 0.001
        beta = round(float(rng.uniform(0.001, 1.0)), 3) or 0.001
        plan = plan_budget(n, alpha=alpha, beta=beta, **kwargs)  # type: ignore[arg-type]
        assert plan.initial_size >= 1 and plan.query_size >= 1
        assert plan.initial_size + sum(plan.round_sizes) == plan.budget <= n
        if "budget" in kwargs:
            assert plan.budget == kwargs["budget"]


def test_decimal_ratios_do_not_suffer_float_rounding() -> None:
    # 0.07 * 100 == 7.000000000000001 in floating point: the budget must be 7, not 8
    assert math.ceil(0.07 * 100) == 8
    assert plan_budget(100, labeled_ratio=0.07).budget == 7
    # 0.7 * 90 == 62.99999999999999: n0 = floor(alpha x B) must be 63, not 62
    assert math.floor(0.7 * 90) == 62
    assert plan_budget(90, budget=90, alpha=0.7).initial_size == 63


def test_worked_example_from_the_docs() -> None:
    plan = plan_budget(1679, labeled_ratio=0.05, alpha=0.1, beta=0.5)
    assert (plan.budget, plan.initial_size, plan.query_size) == (84, 8, 4)
    assert plan.round_sizes == (4,) * 19
    assert "B = ceil(0.05 x 1679) = 84" in plan.describe()


def test_alpha_times_budget_below_one_still_gives_one_image() -> None:
    # SPEC defect 2: alpha x B < 1 gave a zero-sized query and a division by zero
    plan = plan_budget(10, budget=3, alpha=0.1, beta=0.1)
    assert plan.initial_size == 1 and plan.query_size == 1 and plan.round_sizes == (1, 1)


def test_full_alpha_means_no_query_round() -> None:
    plan = plan_budget(50, budget=10, alpha=1.0, beta=0.5)
    assert plan.initial_size == 10 and plan.round_sizes == ()


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"labeled_ratio": 0.0}, ConfigError, "--labeled-ratio must lie in (0, 1]"),
        ({"labeled_ratio": 1.5}, ConfigError, "--labeled-ratio must lie in (0, 1]"),
        ({"labeled_ratio": -0.1}, ConfigError, "--labeled-ratio"),
        ({"labeled_ratio": float("nan")}, ConfigError, "--labeled-ratio"),
        ({"labeled_ratio": 0.1, "alpha": 0.0}, ConfigError, "--alpha must lie in (0, 1]"),
        ({"labeled_ratio": 0.1, "alpha": 1.01}, ConfigError, "--alpha"),
        ({"labeled_ratio": 0.1, "beta": 0.0}, ConfigError, "--beta must lie in (0, 1]"),
        ({"labeled_ratio": 0.1, "beta": 2.0}, ConfigError, "--beta"),
        ({"budget": 21}, BudgetError, "exceeds the pool of 20 images"),
        ({"budget": 0}, ConfigError, "--budget must be a whole number of images >= 1"),
        ({}, ConfigError, "exactly one of --labeled-ratio"),
        ({"budget": 3, "labeled_ratio": 0.1}, ConfigError, "exactly one of"),
    ],
)
def test_invalid_budgets_are_rejected(
    kwargs: dict[str, float], error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as info:
        plan_budget(20, **kwargs)  # type: ignore[arg-type]
    assert text in str(info.value)


def test_empty_pool_is_rejected() -> None:
    with pytest.raises(BudgetError, match="pool is empty"):
        plan_budget(0, labeled_ratio=0.1)
