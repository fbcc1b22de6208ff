from fractions import Fraction

import pytest

from als4gan.active.budget import plan_budget
from als4gan.errors import ConfigError
from als4gan.ratios import exact_fraction, ratio_budget
from als4gan.train.config import labelled_budget


def test_exact_fraction_reads_the_decimal_typed() -> None:
    assert exact_fraction(0.07, "r") == Fraction(7, 100)
    assert exact_fraction("0.7", "r") == Fraction(7, 10)
    with pytest.raises(ConfigError, match="r must be a number"):
        exact_fraction("abc", "r")


def test_ratio_budget_has_no_binary_rounding() -> None:
    assert 0.07 * 100 > 7  # the float product would round up to 8
    assert ratio_budget(0.07, 100) == 7
    assert ratio_budget(Fraction(1, 3), 10) == 4


def test_train_and_select_share_one_budget() -> None:
    for ratio in (0.01, 0.05, 0.07, 0.1, 0.125, 0.5, 1.0):
        for count in (1, 7, 90, 100, 803):
            expected = ratio_budget(ratio, count)
            assert labelled_budget(ratio, count) == expected
            assert plan_budget(count, labeled_ratio=ratio).budget == expected
