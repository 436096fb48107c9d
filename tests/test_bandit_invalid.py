"""Bad inputs to the bandit core raise ValueError naming the value (and change nothing)."""

from __future__ import annotations

import numpy as np
import pytest

from adgen.bandit import (
    UCB1,
    Controls,
    DiscountedEvidence,
    EpsilonGreedy,
    ThompsonSampling,
    UniformPolicy,
)


@pytest.fixture
def ts() -> ThompsonSampling:
    policy = ThompsonSampling(3, np.random.default_rng(0))
    policy.set_evidence([1, 2, 3], [10, 10, 10])
    return policy


@pytest.mark.parametrize("n_arms", [0, -1, 2.5, "3", True, None])
def test_bad_arm_counts(n_arms: object) -> None:
    with pytest.raises(ValueError, match="n_arms"):
        ThompsonSampling(n_arms, np.random.default_rng(0))  # type: ignore[arg-type]


@pytest.mark.parametrize("rng", [None, 42, np.random.RandomState(0)])
def test_rng_must_be_a_generator(rng: object) -> None:
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        UniformPolicy(2, rng)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("successes", "trials", "match"),
    [
        ([1, 2], [10, 10], "3 arms"),
        ([1, 2, 3], [10, 10], "same shape"),
        ([-1, 2, 3], [10, 10, 10], ">= 0"),
        ([1, 2, 11], [10, 10, 10], "exceed"),
        ([1, np.nan, 3], [10, 10, 10], "finite"),
        ([1, 2, 3], [10, np.inf, 10], "finite"),
        (["a", 2, 3], [10, 10, 10], "could not convert|invalid literal"),
    ],
)
def test_bad_evidence_is_refused_and_the_old_evidence_kept(
    ts: ThompsonSampling, successes: list[object], trials: list[object], match: str
) -> None:
    before = ts.probabilities()
    with pytest.raises(ValueError, match=match):
        ts.set_evidence(successes, trials)  # type: ignore[arg-type]
    np.testing.assert_array_equal(ts.successes, [1, 2, 3])
    np.testing.assert_array_equal(ts.probabilities(), before)


@pytest.mark.parametrize(("arm", "reward"), [(3, 1.0), (-1, 1.0), (1.0, 1.0), (True, 1.0),
                                             (0, 1.5), (0, -0.1), (0, "1"), (0, None)])
def test_bad_updates(ts: ThompsonSampling, arm: object, reward: object) -> None:
    with pytest.raises(ValueError, match="arm|reward"):
        ts.update(arm, reward)  # type: ignore[arg-type]
    np.testing.assert_array_equal(ts.trials, [10, 10, 10])


@pytest.mark.parametrize("n", [0, -5, 1.5, None])
def test_bad_batch_sizes(ts: ThompsonSampling, n: object) -> None:
    with pytest.raises(ValueError, match="n must be"):
        ts.choose_many(n)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_exploration": 1.0}, "min_exploration"),
        ({"min_exploration": -0.1}, "min_exploration"),
        ({"cap": 0.0}, "cap"),
        ({"cap": 1.5}, "cap"),
        ({"capped": (1, 1)}, "twice"),
        ({"cap": 0.1, "guaranteed": 0.2}, "guaranteed"),
        ({"guaranteed": -0.1}, "guaranteed"),
        ({"paused": ("a",)}, "paused"),
        ({"control": (True,)}, "control"),
        ({"capped": (1, 2), "control": (2,)}, "both capped and control"),
    ],
)
def test_bad_controls(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Controls(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("controls", "match"),
    [
        (Controls(capped=(5,)), "outside"),
        (Controls(control=(3,)), "control arm indices"),
        (Controls(paused=(0, 1, 2)), "all 3 arms are paused"),
    ],
)
def test_controls_that_do_not_fit_the_arms(
    ts: ThompsonSampling, controls: Controls, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        ts.set_controls(controls)
    assert ts.controls == Controls()


def test_controls_must_be_controls(ts: ThompsonSampling) -> None:
    with pytest.raises(ValueError, match="Controls"):
        ts.set_controls({"cap": 0.5})  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"samples": 0}, {"samples": 2.5}, {"block_size": 0}])
def test_bad_thompson_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="samples|block_size"):
        ThompsonSampling(2, np.random.default_rng(0), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("epsilon", [-0.1, 1.1, "0.1"])
def test_bad_epsilon(epsilon: object) -> None:
    with pytest.raises(ValueError, match="epsilon"):
        EpsilonGreedy(2, np.random.default_rng(0), epsilon=epsilon)  # type: ignore[arg-type]


def test_ucb1_shares_the_facade_validation() -> None:
    with pytest.raises(ValueError, match="exceed"):
        UCB1(2, np.random.default_rng(0)).set_evidence([3, 0], [2, 0])


@pytest.mark.parametrize("half_life", [0, -1, float("inf"), "10"])
def test_bad_half_life(half_life: object) -> None:
    with pytest.raises(ValueError, match="half_life_s"):
        DiscountedEvidence(half_life)  # type: ignore[arg-type]


def test_discount_keys_must_be_unique_and_match_counts() -> None:
    d = DiscountedEvidence(10.0)
    with pytest.raises(ValueError, match="unique"):
        d.update(["a", "a"], [1, 1], [2, 2], now_s=0.0)
    with pytest.raises(ValueError, match="2 arms"):
        d.update(["a", "b"], [1], [2], now_s=0.0)
