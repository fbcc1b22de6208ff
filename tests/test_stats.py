"""Paired differences over seeds: t quantiles and intervals checked against hand computation."""

import math

import pytest

from als4gan.stats import NO_INTERVAL, paired_difference, t_quantile


@pytest.mark.parametrize(
    ("dof", "expected"),
    # two-sided 95 % critical values of Student's t (standard tables)
    [(1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622), (30, 2.0423), (120, 1.9799)],
)
def test_t_quantile_matches_tables(dof: int, expected: float) -> None:
    assert t_quantile(0.975, dof) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_other_levels_and_bad_input() -> None:
    assert t_quantile(0.95, 5) == pytest.approx(2.0150, abs=1e-4)  # one-sided 95 %
    assert t_quantile(0.995, 10) == pytest.approx(3.1693, abs=1e-4)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile(0.975, 0)
    with pytest.raises(ValueError, match="probability"):
        t_quantile(1.0, 3)


def test_paired_difference_by_hand() -> None:
    # differences 2, 3, 4: mean 3, sd 1, half-width t(0.975, 2) / sqrt(3) = 4.3027 / 1.7321
    result = paired_difference({0: 12.0, 1: 13.0, 2: 14.0}, {0: 10.0, 1: 10.0, 2: 10.0})
    assert result.n == 3
    assert result.mean == pytest.approx(3.0)
    assert result.sd == pytest.approx(1.0)
    assert result.ci_low == pytest.approx(3 - 2.484138, abs=1e-5)
    assert result.ci_high == pytest.approx(3 + 2.484138, abs=1e-5)
    assert (result.wins, result.losses, result.ties) == (3, 0, 0)
    assert result.significant is True
    assert result.verdict == "significant"
    # differences 1, 2, 3: same spread, the interval [-0.48, 4.48] contains 0
    shifted = paired_difference({0: 11.0, 1: 12.0, 2: 13.0}, {0: 10.0, 1: 10.0, 2: 10.0})
    assert shifted.ci_low == pytest.approx(2 - 2.484138, abs=1e-5)
    assert shifted.significant is False
    assert shifted.verdict == "not significant"


def test_paired_difference_pairs_by_seed_and_counts_ties() -> None:
    # seed 3 has no partner and is left out; order of the mappings does not matter
    result = paired_difference({2: 0.55, 0: 0.50, 1: 0.60, 3: 0.9}, {0: 0.40, 1: 0.60, 2: 0.57})
    assert result.seeds == (0, 1, 2)
    assert result.differences == pytest.approx((0.10, 0.0, -0.02))
    assert (result.wins, result.losses, result.ties) == (1, 1, 1)
    # mean 0.08 / 3; deviations 0.07333, -0.02667, -0.04667 -> variance 0.0082667 / 2
    assert result.mean == pytest.approx(0.08 / 3)
    assert result.sd == pytest.approx(math.sqrt(0.0082667 / 2), rel=1e-4)


def test_one_seed_has_no_interval_and_no_seed_in_common_is_refused() -> None:
    single = paired_difference({0: 0.5}, {0: 0.4})
    assert single.n == 1
    assert single.mean == pytest.approx(0.1)
    assert single.sd is None and single.ci_low is None and single.ci_high is None
    assert single.significant is None
    assert single.verdict == NO_INTERVAL == "n = 1, no interval"
    with pytest.raises(ValueError, match="no seed in common"):
        paired_difference({0: 0.5}, {1: 0.4})
    with pytest.raises(ValueError, match="non-finite"):
        paired_difference({0: float("nan")}, {0: 0.4})
