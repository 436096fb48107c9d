"""Baseline policies for benchmarks only: uniform A/B, epsilon-greedy, UCB1 (pure numpy).

The index functions work on arrays of shape ``(..., K)`` so that benchmarks can run many
seeds at once; the classes put them behind the :class:`~adgen.bandit.policy.Policy` facade.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from adgen.bandit.controls import NO_CONTROLS, Controls
from adgen.bandit.policy import DEFAULT_BLOCK, Policy


def empirical_means(
    successes: NDArray[np.float64], trials: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Observed rates; ``+inf`` for arms never tried (so they are tried first)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(trials > 0, successes / np.maximum(trials, 1e-300), np.inf)


def ucb1_index(successes: NDArray[np.float64], trials: NDArray[np.float64]) -> NDArray[np.float64]:
    """UCB1 (Auer et al. 2002): mean + sqrt(2 ln t / n); ``+inf`` for untried arms."""
    t = np.maximum(trials.sum(axis=-1, keepdims=True), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = np.sqrt(2.0 * np.log(t) / trials)
    return np.where(trials > 0, successes / np.maximum(trials, 1e-300) + bonus, np.inf)


def _argmax_share(scores: NDArray[np.float64], live: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Probability one on the best live arm, split evenly between ties."""
    masked = np.where(live, scores, -np.inf)
    best = masked == masked.max()
    return best / best.sum()


class UniformPolicy(Policy):
    """Uniform A/B allocation over the live arms."""

    name = "uniform"

    def _base_probabilities(self, live: NDArray[np.bool_]) -> NDArray[np.float64]:
        return live / live.sum()


class EpsilonGreedy(Policy):
    """The best observed arm with probability 1 - epsilon, a uniform arm otherwise."""

    name = "egreedy"

    def __init__(
        self,
        n_arms: int,
        rng: np.random.Generator,
        *,
        epsilon: float = 0.1,
        controls: Controls = NO_CONTROLS,
        block_size: int = DEFAULT_BLOCK,
    ) -> None:
        if not isinstance(epsilon, int | float) or not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        self.epsilon = float(epsilon)
        super().__init__(n_arms, rng, controls=controls, block_size=block_size)

    def _base_probabilities(self, live: NDArray[np.bool_]) -> NDArray[np.float64]:
        greedy = _argmax_share(empirical_means(self._successes, self._trials), live)
        return (1.0 - self.epsilon) * greedy + self.epsilon * live / live.sum()


class UCB1(Policy):
    """UCB1: the arm with the highest upper confidence bound (deterministic, ties split)."""

    name = "ucb1"

    def _base_probabilities(self, live: NDArray[np.bool_]) -> NDArray[np.float64]:
        return _argmax_share(ucb1_index(self._successes, self._trials), live)
