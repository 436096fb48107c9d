"""Posterior statistics: means, exact credible intervals, P(a > b) (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from adgen.stats import (
    _prob_greater_exact,
    _prob_greater_quad,
    credible_interval,
    posterior_mean,
    prob_better,
    successes_within,
)


def test_successes_within_clamps_scalars_and_arrays() -> None:
    assert successes_within(5, 4) == 4 and isinstance(successes_within(5, 4), int)
    assert successes_within(2.5, 4.0) == 2.5
    np.testing.assert_array_equal(
        successes_within(np.array([3.0, 9.0]), np.array([5.0, 7.0])), [3.0, 7.0]
    )


def test_posterior_mean_takes_another_prior() -> None:
    assert posterior_mean(3, 10, prior=(2.0, 98.0)) == pytest.approx(5 / 110)
    with pytest.raises(ValueError, match="prior"):
        posterior_mean(3, 10, prior=(0.0, 1.0))


def test_posterior_mean_uses_the_uniform_prior() -> None:
    assert posterior_mean(0, 0) == 0.5
    assert posterior_mean(3, 10) == pytest.approx(4 / 12)
    np.testing.assert_allclose(posterior_mean([1, 9], [10, 10]), [2 / 12, 10 / 12])


def test_credible_interval_is_the_exact_beta_quantiles() -> None:
    lo, hi = credible_interval(30, 1000)
    assert lo == pytest.approx(sps.beta.ppf(0.025, 31, 971), rel=1e-10)
    assert hi == pytest.approx(sps.beta.ppf(0.975, 31, 971), rel=1e-10)
    lo90, hi90 = credible_interval(30, 1000, level=0.9)
    assert lo < lo90 < hi90 < hi
    los, his = map(np.asarray, credible_interval([0, 5], [0, 5]))
    assert los[0] == pytest.approx(0.025) and his[0] == pytest.approx(0.975)
    # Beta(6, 1) has the closed-form quantile q ** (1 / 6)
    assert (los[1], his[1]) == pytest.approx((0.025 ** (1 / 6), 0.975 ** (1 / 6)))


def test_credible_interval_for_millions_is_narrow_and_covers_the_rate() -> None:
    lo, hi = credible_interval(50_000, 1_000_000)
    assert lo < 0.05 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.05 * 0.95 / 1e6), rel=0.01)


def test_prob_better_against_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    a = rng.beta(11, 91, 2_000_000)
    b = rng.beta(6, 96, 2_000_000)
    assert prob_better(10, 100, 5, 100) == pytest.approx((a > b).mean(), abs=0.001)


def test_prob_better_symmetries() -> None:
    assert prob_better(7, 50, 7, 50) == pytest.approx(0.5, abs=1e-12)
    p = prob_better(12, 300, 20, 310)
    assert p + prob_better(20, 310, 12, 300) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "params",
    [(3, 5, 7, 2), (11, 91, 6, 96), (1001, 9001, 950, 9050), (50001, 950001, 49001, 951001)],
)
def test_exact_sum_and_quadrature_agree(params: tuple[int, int, int, int]) -> None:
    assert _prob_greater_exact(*params) == pytest.approx(_prob_greater_quad(*params), abs=1e-9)


def test_prob_better_for_counts_in_the_millions_matches_the_normal_limit() -> None:
    # 10M trials each: the posteriors are normal to many digits
    p = prob_better(5_000_000, 10_000_000, 4_998_000, 10_000_000)
    sd = math.sqrt(2 * 0.5 * 0.5 / 10_000_002)
    assert p == pytest.approx(sps.norm.cdf(0.0002 / sd), abs=1e-4)
    assert 0.81 < p < 0.82


def test_prob_better_in_the_tails() -> None:
    assert prob_better(1000, 10_000, 10, 10_000) == pytest.approx(1.0, abs=1e-12)
    assert prob_better(10, 10_000, 1000, 10_000) < 1e-12
    assert prob_better(0, 0, 0, 0) == pytest.approx(0.5)


def test_fractional_counts_use_quadrature() -> None:
    whole = prob_better(30, 1000, 22, 1000)
    assert prob_better(30.0001, 1000, 22, 1000) == pytest.approx(whole, abs=1e-4)


@pytest.mark.parametrize(
    ("args", "match"),
    [((-1, 10, 1, 10), ">= 0"), ((11, 10, 1, 10), "exceed"), ((1, math.nan, 1, 10), "finite")],
)
def test_bad_counts(args: tuple[float, float, float, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        prob_better(*args)


def test_bad_level() -> None:
    with pytest.raises(ValueError, match="level"):
        credible_interval(1, 10, level=1.0)
