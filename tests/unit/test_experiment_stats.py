"""Rank statistics of the analyses, against hand-computed values and properties."""

from __future__ import annotations

import itertools
import random

import pytest

from sailvl.experiment.stats import fit_line, kendall_tau, ranks, spearman


def test_ranks_share_the_mean_rank_on_ties() -> None:
    assert ranks([10.0, 30.0, 20.0]) == [3.0, 1.0, 2.0]
    assert ranks([5.0, 7.0, 7.0, 1.0]) == [3.0, 1.5, 1.5, 4.0]
    assert ranks([5.0, 7.0, 1.0], descending=False) == [2.0, 3.0, 1.0]


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_identical_and_reversed_orders(n: int) -> None:
    xs = [float(i * i) for i in range(n)]
    assert kendall_tau(xs, xs) == 1.0 and spearman(xs, xs) == pytest.approx(1.0)
    rev = list(reversed(xs))
    assert kendall_tau(xs, rev) == -1.0 and spearman(xs, rev) == pytest.approx(-1.0)


def test_kendall_tau_b_by_hand() -> None:
    # Pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> (5-1)/6.
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # With a tie in y: pairs (0,1) tie_y; (0,2),(1,2) concordant -> 2/sqrt(3*2).
    assert kendall_tau([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / 6**0.5)
    with pytest.raises(ValueError, match="constant"):
        kendall_tau([1, 1, 1], [1, 2, 3])


def test_spearman_is_pearson_of_ranks_by_hand() -> None:
    # d = rank differences (0, 1, -1, 0): 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_symmetry_and_range_over_random_grids() -> None:
    rng = random.Random(7)
    for n, _ in itertools.product([3, 4, 6], range(30)):
        xs = [float(rng.randint(0, 5)) for _ in range(n)]
        ys = [float(rng.randint(0, 5)) for _ in range(n)]
        try:
            t = kendall_tau(xs, ys)
        except ValueError:
            continue
        assert -1.0 <= t <= 1.0
        assert kendall_tau(ys, xs) == pytest.approx(t)
        # A monotone transform of one series changes neither statistic.
        assert kendall_tau([x**3 + 1 for x in xs], ys) == pytest.approx(t)
        assert spearman([x**3 + 1 for x in xs], ys) == pytest.approx(spearman(xs, ys))


def test_fit_line_recovers_a_line() -> None:
    a, b, r2 = fit_line([1, 2, 3, 4], [3.5, 5.5, 7.5, 9.5])
    assert (a, b, r2) == pytest.approx((1.5, 2.0, 1.0))
    with pytest.raises(ValueError):
        fit_line([2, 2], [1, 3])
