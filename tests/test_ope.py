"""Off-policy estimators against hand-worked small cases (adgen.ope)."""

from __future__ import annotations

import numpy as np
import pytest

from adgen.ope import LoggedData, estimate, mean_reward_model, observed_mean

ALWAYS_0 = [[1.0, 0.0]] * 4


def _data(pscore: list[float]) -> LoggedData:
    return LoggedData.build([0, 1, 0, 1], [1.0, 0.0, 0.0, 1.0], pscore, ALWAYS_0)


def test_ipw_snipw_dr_match_the_formulas_worked_by_hand() -> None:
    # w = pi_e(a)/pscore = [1.25, 0, 1.25, 0]
    data = _data([0.8, 0.2, 0.8, 0.2])
    got = {e.name: e for e in estimate(data, np.random.default_rng(0), n_bootstrap=50,
                                       q=[0.3, 0.6])}
    assert got["ipw"].value == pytest.approx((1.25 * 1) / 4)  # 0.3125
    assert got["snipw"].value == pytest.approx(1.25 / 2.5)  # 0.5
    # DR: 0.3 + w (r - q(a)) per round: 1.175, 0.3, -0.075, 0.3
    assert got["dr"].value == pytest.approx((1.175 + 0.3 - 0.075 + 0.3) / 4)
    for e in got.values():
        assert e.ci95_low <= e.ci95_high


def test_dr_default_reward_model_shrinks_to_overall_mean() -> None:
    data = LoggedData.build([0, 1, 0, 1], [1.0, 0.0, 1.0, 1.0], [0.5] * 4, ALWAYS_0)
    q = mean_reward_model(data)
    assert q == pytest.approx([(2 + 0.75) / 3, (1 + 0.75) / 3])
    unseen = LoggedData.build([0, 0], [1.0, 0.0], [0.5, 0.5], [[0.5, 0.5]] * 2)
    assert mean_reward_model(unseen)[1] == pytest.approx(0.5)  # never served: overall mean


def test_on_policy_estimates_equal_the_observed_mean() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, size=500)
    r = (rng.random(500) < 0.1 + 0.1 * a).astype(float)
    dist = np.full((500, 3), 1 / 3)
    data = LoggedData.build(a, r, np.full(500, 1 / 3), dist)
    got = {e.name: e for e in estimate(data, rng, n_bootstrap=200)}
    for name in ("ipw", "snipw"):  # weights are all 1: exactly the logged mean
        assert got[name].value == pytest.approx(r.mean())
    assert got["dr"].value == pytest.approx(r.mean(), abs=0.01)  # q differs from counts
    logged = observed_mean(r, rng, n_bootstrap=200)
    assert logged.ci95_low < r.mean() < logged.ci95_high
    assert got["ipw"].ci95_low < r.mean() < got["ipw"].ci95_high


def test_ipw_recovers_a_different_policy_value() -> None:
    rng = np.random.default_rng(7)
    n, ctr = 40_000, np.array([0.02, 0.05, 0.10])
    a = rng.integers(0, 3, size=n)
    r = (rng.random(n) < ctr[a]).astype(float)
    best = np.zeros((n, 3))
    best[:, 2] = 1.0
    data = LoggedData.build(a, r, np.full(n, 1 / 3), best)
    got = {e.name: e for e in estimate(data, rng, n_bootstrap=100)}
    for name in ("ipw", "snipw", "dr"):
        assert got[name].ci95_low < 0.10 < got[name].ci95_high


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pscore": [0.0, 0.5, 0.5, 0.5]}, "pscore"),
        ({"action": [0, 2, 0, 1]}, "action must hold"),
        ({"action_dist": [[0.5, 0.6]] * 4}, "summing to 1"),
        ({"reward": [1.0, 0.0]}, "one length"),
    ],
)
def test_bad_logged_data_is_refused_with_the_reason(kwargs: dict, message: str) -> None:
    args = {"action": [0, 1, 0, 1], "reward": [1.0, 0, 0, 1], "pscore": [0.5] * 4,
            "action_dist": ALWAYS_0} | kwargs
    with pytest.raises(ValueError, match=message):
        LoggedData.build(**args)
