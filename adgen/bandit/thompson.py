"""Beta-Bernoulli Thompson sampling (pure numpy), vectorised over any leading axes.

An arm with ``s`` successes in ``n`` trials has the posterior Beta(1 + s, 1 + n - s).
Sequential Thompson sampling draws one sample per arm per decision and plays the argmax
(:func:`sample_choice`). The served policy (:class:`ThompsonSampling`) instead draws a
block of posterior samples per refresh, turns it into each arm's probability of being the
argmax (:func:`win_probabilities`, the propensity) and serves choices from that
distribution until the evidence changes: batched updates, as production systems do.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from adgen.bandit.controls import NO_CONTROLS, Controls
from adgen.bandit.policy import DEFAULT_BLOCK, Policy


def sample_choice(
    successes: NDArray[np.float64],
    trials: NDArray[np.float64],
    rng: np.random.Generator,
    live: NDArray[np.bool_] | None = None,
) -> NDArray[np.int64]:
    """One Thompson decision per leading index: argmax of one posterior draw per arm."""
    draws = rng.beta(1.0 + successes, 1.0 + trials - successes)
    if live is not None:
        draws = np.where(live, draws, -1.0)
    return np.argmax(draws, axis=-1)


def win_probabilities(
    successes: NDArray[np.float64],
    trials: NDArray[np.float64],
    rng: np.random.Generator,
    samples: int,
    live: NDArray[np.bool_] | None = None,
) -> NDArray[np.float64]:
    """Monte Carlo P(arm is the argmax of the posteriors) from ``samples`` joint draws.

    Shape ``(..., K)`` in and out; each row sums to one; non-live arms get zero.
    """
    a = 1.0 + successes
    b = 1.0 + trials - successes
    draws = rng.beta(a, b, size=(samples, *a.shape))
    if live is not None:
        draws = np.where(live, draws, -1.0)
    winners = np.argmax(draws, axis=-1)  # (samples, ...)
    k = a.shape[-1]
    flat = winners.reshape(samples, -1) + k * np.arange(winners[0].size)
    counts = np.bincount(flat.ravel(), minlength=k * winners[0].size)
    return counts.reshape(*a.shape[:-1], k) / samples


def symmetrize(
    p: NDArray[np.float64], successes: NDArray[np.float64], trials: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Average ``p`` over arms with identical posteriors (equal by symmetry; 1-D inputs)."""
    keys = np.stack([successes, trials], axis=-1)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    sums = np.bincount(inverse, weights=p)
    sizes = np.bincount(inverse)
    return (sums / sizes)[inverse]


class ThompsonSampling(Policy):
    """Thompson sampling served from ``samples`` posterior draws per refresh."""

    name = "thompson"

    def __init__(
        self,
        n_arms: int,
        rng: np.random.Generator,
        *,
        samples: int = 2000,
        controls: Controls = NO_CONTROLS,
        block_size: int = DEFAULT_BLOCK,
    ) -> None:
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive int, got {samples!r}")
        self.samples = samples
        super().__init__(n_arms, rng, controls=controls, block_size=block_size)

    def _base_probabilities(self, live: NDArray[np.bool_]) -> NDArray[np.float64]:
        s, n = self._successes, self._trials
        p = win_probabilities(s, n, self.rng, self.samples, live)
        # Arms with the same posterior (paused or not) are swapped by symmetry; averaging
        # within groups of live arms removes Monte Carlo noise among them (a new campaign
        # is served exactly uniformly).
        key_s = np.where(live, s, -1.0)
        return symmetrize(p, key_s, n)
