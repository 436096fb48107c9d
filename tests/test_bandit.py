"""Statistical properties of the bandit policies, with fixed seeds (pure, no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from adgen.bandit import (
    UCB1,
    Controls,
    EpsilonGreedy,
    Policy,
    ThompsonSampling,
    UniformPolicy,
    apply_controls,
    sample_choice,
    win_probabilities,
)

TRUE_RATES = np.array([0.04, 0.05, 0.08])


def _run_sequential(policy: Policy, rates: np.ndarray, steps: int, seed: int) -> np.ndarray:
    world = np.random.default_rng(seed)
    plays = np.zeros(len(rates), dtype=int)
    for _ in range(steps):
        arm = policy.choose().arm
        plays[arm] += 1
        policy.update(arm, float(world.random() < rates[arm]))
    return plays


def test_best_of_three_arms_gets_the_majority_within_a_few_thousand_draws() -> None:
    ts = ThompsonSampling(3, np.random.default_rng(7), samples=500, block_size=1)
    plays = _run_sequential(ts, TRUE_RATES, 3000, seed=11)
    assert plays.argmax() == 2
    assert plays[2] > 0.5 * plays.sum()


def test_batched_refresh_also_finds_the_best_arm() -> None:
    ts = ThompsonSampling(3, np.random.default_rng(3))
    world = np.random.default_rng(4)
    s, n = np.zeros(3), np.zeros(3)
    served = np.zeros(3, dtype=int)
    for _ in range(6):  # six refreshes of 500 impressions each
        ts.set_evidence(s, n)
        arms, _ = ts.choose_many(500)
        counts = np.bincount(arms, minlength=3)
        served += counts
        n += counts
        s += world.binomial(counts, TRUE_RATES)
    assert served.argmax() == 2
    assert ts.probabilities()[2] > 0.5


def test_new_arms_are_served_exactly_uniformly() -> None:
    ts = ThompsonSampling(4, np.random.default_rng(0))
    np.testing.assert_allclose(ts.probabilities(), 0.25)


@pytest.mark.parametrize(
    "policy",
    [
        ThompsonSampling(4, np.random.default_rng(1), samples=4000),
        UniformPolicy(4, np.random.default_rng(1)),
        EpsilonGreedy(4, np.random.default_rng(1), epsilon=0.2),
        UCB1(4, np.random.default_rng(1)),
    ],
    ids=lambda p: p.name,
)
def test_propensities_sum_to_one_and_match_choice_frequencies(policy: Policy) -> None:
    policy.set_evidence([10, 12, 30, 5], [400, 400, 500, 300])
    p = policy.probabilities()
    assert p.sum() == pytest.approx(1.0)
    draws = 40_000
    seen = np.zeros(4)
    for _ in range(draws):
        choice = policy.choose()
        seen[choice.arm] += 1
        assert choice.propensity == p[choice.arm]
    freq = seen / draws
    # binomial standard error at 40k draws is at most 0.0025; allow 4 of them
    np.testing.assert_allclose(freq, p, atol=0.01)


def test_monte_carlo_propensity_is_close_to_the_exact_two_arm_value() -> None:
    from adgen.stats import prob_better

    ts = ThompsonSampling(2, np.random.default_rng(5), samples=20_000)
    ts.set_evidence([30, 22], [1000, 1000])
    exact = prob_better(30, 1000, 22, 1000)
    assert ts.probabilities()[0] == pytest.approx(exact, abs=0.01)


def test_exploration_floor_holds_for_every_live_arm() -> None:
    controls = Controls(min_exploration=0.2)
    ts = ThompsonSampling(5, np.random.default_rng(2), controls=controls)
    ts.set_evidence([0, 0, 0, 0, 900], [1000, 1000, 1000, 1000, 1000])
    p = ts.probabilities()
    assert p.min() >= 0.2 / 5 - 1e-12
    arms, _ = ts.choose_many(50_000)
    freq = np.bincount(arms, minlength=5) / 50_000
    assert freq[:4].min() > 0.035  # floor 0.04 minus 4 standard errors (0.0009 each)


def test_cap_on_candidate_arms_holds_exactly_and_propensities_follow() -> None:
    controls = Controls(cap=0.1, capped=(2, 3))
    ts = ThompsonSampling(4, np.random.default_rng(8), controls=controls)
    ts.set_evidence([10, 12, 90, 80], [1000, 1000, 1000, 1000])  # the candidates are better
    p = ts.probabilities()
    assert p[[2, 3]].sum() == pytest.approx(0.1, abs=1e-12)
    assert p[2] > p[3]  # inside the cap the better candidate still gets more
    arms, props = ts.choose_many(100_000)
    np.testing.assert_array_equal(props, p[arms])
    assert np.isin(arms, [2, 3]).mean() == pytest.approx(0.1, abs=0.004)


def test_cap_leaves_a_group_below_it_alone() -> None:
    controls = Controls(cap=0.5, capped=(0,))
    ts = ThompsonSampling(2, np.random.default_rng(8), controls=controls)
    ts.set_evidence([10, 90], [1000, 1000])
    assert ts.probabilities()[0] < 0.01


def test_a_starved_candidate_still_gets_its_guaranteed_share() -> None:
    """The policy would give the clearly worse candidate arms almost nothing; the guarantee
    lifts them to exactly their share, and the logged propensities are the served ones."""
    controls = Controls(cap=0.2, guaranteed=0.05, capped=(2, 3))
    ts = ThompsonSampling(4, np.random.default_rng(8), controls=controls)
    ts.set_evidence([90, 80, 10, 12], [1000, 1000, 1000, 1000])
    p = ts.probabilities()
    assert p[[2, 3]].sum() == pytest.approx(0.05, abs=1e-12)
    assert p[2] == pytest.approx(p[3])  # the policy gives them nothing: spread evenly
    arms, props = ts.choose_many(100_000)
    np.testing.assert_array_equal(props, p[arms])
    assert np.isin(arms, [2, 3]).mean() == pytest.approx(0.05, abs=0.003)


def test_a_candidate_between_guarantee_and_cap_keeps_its_share_with_the_guarantee_even() -> None:
    """The group keeps what the policy gives it; the guaranteed part of it is spread evenly
    and the rest follows the policy: (0.10 - 0.05) split 6:4, plus 0.025 each."""
    base = np.array([0.5, 0.4, 0.06, 0.04])
    p = apply_controls(base, Controls(cap=0.2, guaranteed=0.05, capped=(2, 3)))
    np.testing.assert_allclose(p, [0.5, 0.4, 0.055, 0.045])


def test_without_a_guarantee_a_group_under_its_cap_is_left_to_the_policy() -> None:
    base = np.array([0.5, 0.4, 0.06, 0.04])
    p = apply_controls(base, Controls(cap=0.2, capped=(2, 3), control=(0,)))
    np.testing.assert_allclose(p, base)


def test_the_guarantee_lifts_every_text_of_the_group_evenly() -> None:
    """A starved text is measured as fast as its sibling: the policy's order only decides
    what the group gets beyond the guarantee, and the other arms keep their ratio."""
    base = np.array([0.85, 0.07, 0.05, 0.03])
    p = apply_controls(base, Controls(cap=0.2, guaranteed=0.06, capped=(2, 3)))
    assert p[[2, 3]].sum() == pytest.approx(0.08) and p.sum() == pytest.approx(1.0)
    assert p[2] == pytest.approx(0.03 + 0.02 * 5 / 8) and p[3] == pytest.approx(0.03 + 0.02 * 3 / 8)
    assert p[0] / p[1] == pytest.approx(0.85 / 0.07)


def test_control_arms_get_the_guarantee_too_spread_evenly() -> None:
    """The incumbent's same-cycle texts, which the policy starves beside its proven best, get
    the candidate's guaranteed share as well, evenly, so the gate compares like with like;
    the propensities logged are the served ones."""
    controls = Controls(cap=0.2, guaranteed=0.05, capped=(2, 3), control=(4, 5))
    ts = ThompsonSampling(6, np.random.default_rng(8), controls=controls)
    ts.set_evidence([90, 80, 10, 12, 11, 9], [1000] * 6)
    p = ts.probabilities()
    np.testing.assert_allclose(p[2:], [0.025] * 4, atol=1e-12)
    assert p.sum() == pytest.approx(1.0) and p[0] > p[1]
    arms, props = ts.choose_many(100_000)
    np.testing.assert_array_equal(props, p[arms])
    assert np.isin(arms, [4, 5]).mean() == pytest.approx(0.05, abs=0.003)


def test_control_arms_the_policy_favours_keep_what_it_gives_them() -> None:
    base = np.array([0.1, 0.1, 0.8])
    p = apply_controls(base, Controls(cap=0.2, guaranteed=0.05, capped=(1,), control=(2,)))
    np.testing.assert_allclose(p, [0.1, 0.1, 0.8])


def test_without_a_candidate_the_policy_is_served_as_it_is() -> None:
    """Nothing is before the gate: the guarantee has nothing to apply to, and the served
    distribution is the policy's, bit for bit (the loop without retraining relies on it)."""
    base = np.array([0.7, 0.2, 0.1])
    p = apply_controls(base, Controls(min_exploration=0.3, cap=0.2, guaranteed=0.05))
    np.testing.assert_array_equal(p, 0.7 * base + 0.1)


def test_control_arms_lose_their_floor_when_the_candidate_serves_nothing_here() -> None:
    """An operator paused the candidate's texts in this campaign: its same-cycle rivals are
    ordinary texts again, left to the policy."""
    base = np.array([1.0, 0.0, 0.0, 0.0])  # the policy gives the rivals nothing
    controls = Controls(cap=0.2, guaranteed=0.05, capped=(1,), control=(2, 3), paused=(1,))
    np.testing.assert_array_equal(apply_controls(base, controls), base)


def test_when_candidate_and_control_are_every_arm_the_control_takes_the_rest() -> None:
    base = np.array([0.9, 0.1])
    p = apply_controls(base, Controls(cap=0.2, guaranteed=0.05, capped=(0,), control=(1,)))
    np.testing.assert_allclose(p, [0.2, 0.8])


def test_cap_and_floor_together_keep_both_where_feasible() -> None:
    base = np.array([0.0, 0.0, 0.6, 0.4])
    p = apply_controls(base, Controls(min_exploration=0.2, cap=0.3, capped=(2, 3)))
    assert p.sum() == pytest.approx(1.0)
    assert p[[2, 3]].sum() == pytest.approx(0.3)
    assert p.min() >= 0.05 - 1e-12


def test_cap_outranks_the_floor_when_both_cannot_hold() -> None:
    controls = Controls(min_exploration=0.9, cap=0.1, capped=(1,))
    p = apply_controls(np.array([0.0, 1.0, 0.0]), controls)
    assert p[1] == pytest.approx(0.1)
    assert p.sum() == pytest.approx(1.0)


def test_paused_arms_are_never_served() -> None:
    ts = ThompsonSampling(3, np.random.default_rng(4), controls=Controls(paused=(2,)))
    ts.set_evidence([1, 1, 500], [1000, 1000, 1000])
    arms, _ = ts.choose_many(10_000)
    assert not (arms == 2).any()
    assert ts.probabilities()[2] == 0.0
    ts.set_controls(Controls())
    assert ts.probabilities()[2] > 0.99


def test_vectorised_sampling_matches_win_probabilities() -> None:
    rng = np.random.default_rng(6)
    s = np.array([[5.0, 9.0, 7.0], [1.0, 1.0, 50.0]])
    n = np.array([[100.0, 100.0, 100.0], [100.0, 100.0, 100.0]])
    p = win_probabilities(s, n, rng, samples=20_000)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    choices = np.stack([sample_choice(s, n, rng) for _ in range(20_000)])
    for row in range(2):
        freq = np.bincount(choices[:, row], minlength=3) / 20_000
        np.testing.assert_allclose(freq, p[row], atol=0.015)


def test_same_seed_gives_the_same_choices() -> None:
    def run(seed: int) -> list[int]:
        ts = ThompsonSampling(5, np.random.default_rng(seed))
        ts.set_evidence([1, 2, 3, 4, 5], [50, 50, 50, 50, 50])
        return [ts.choose().arm for _ in range(50)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_ucb1_tries_every_arm_before_repeating() -> None:
    ucb = UCB1(5, np.random.default_rng(0), block_size=1)
    first = []
    for _ in range(5):
        arm = ucb.choose().arm
        first.append(arm)
        ucb.update(arm, 0.0)
    assert sorted(first) == [0, 1, 2, 3, 4]


def test_epsilon_greedy_puts_one_minus_epsilon_on_the_leader() -> None:
    eg = EpsilonGreedy(4, np.random.default_rng(0), epsilon=0.2)
    eg.set_evidence([1, 2, 9, 3], [10, 10, 10, 10])
    np.testing.assert_allclose(eg.probabilities(), [0.05, 0.05, 0.85, 0.05])
