"""One definition per reported figure (adgen.stats): CTR, conversion rate, the CTR's 95%
interval, probability of being best."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from adgen.stats import conversion_rate, ctr, ctr_interval, prob_best, prob_better


def test_rates_are_per_impression_and_undefined_without_impressions() -> None:
    assert ctr(7, 100) == pytest.approx(0.07)
    assert conversion_rate(2, 100) == pytest.approx(0.02)  # per impression, not per click
    assert ctr(0, 0) is None and conversion_rate(0, 0) is None


def test_ctr_interval_is_the_exact_beta_interval() -> None:
    lo, hi = ctr_interval(8, 98)
    beta = scipy_stats.beta(1 + 8, 1 + 90)
    assert (lo, hi) == pytest.approx((beta.ppf(0.025), beta.ppf(0.975)), abs=1e-12)
    assert ctr_interval(0, 0) == pytest.approx((0.025, 0.975))
    assert ctr_interval(5, 3) == ctr_interval(3, 3)  # clicks ahead of impressions


def test_prob_best_matches_the_exact_pairwise_figure_and_is_deterministic() -> None:
    p = prob_best([12, 20], [200, 210])
    assert p.sum() == pytest.approx(1.0)
    assert p[1] == pytest.approx(prob_better(20, 210, 12, 200), abs=0.01)
    assert np.array_equal(p, prob_best([12, 20], [200, 210]))
    assert prob_best([3, 3, 3], [50, 50, 50]) == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError):
        prob_best([], [])
    with pytest.raises(ValueError):
        prob_best([5], [2])
