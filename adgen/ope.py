"""Off-policy evaluation of a bandit policy from logged impressions (pure numpy).

A log of ``n`` rounds holds, per round ``i``, the served action ``a_i``, its reward
``r_i`` (click = 1) and the logging policy's probability of that action ``pscore_i``
(the propensity). An evaluation policy gives ``pi_e(a | i)`` for every action
(``action_dist``, shape ``(n, n_actions)``). With ``w_i = pi_e(a_i | i) / pscore_i``:

- IPW (inverse propensity weighting): ``V = mean(w_i r_i)``; unbiased when the logging
  policy gave every action the evaluation policy plays a positive probability.
- SNIPW (self-normalised IPW): ``V = sum(w_i r_i) / sum(w_i)``; a little biased, much
  less variance, and always within the range of the rewards.
- DR (doubly robust): ``V = mean(sum_a pi_e(a|i) q(i, a) + w_i (r_i - q(i, a_i)))`` with a
  reward model ``q``; unbiased if either the propensities or ``q`` are right. By default
  ``q(i, a)`` is the action's mean logged reward, shrunk to the overall mean (a Beta prior
  of strength 1 around it), so an action never served gets the overall mean.

The 95% intervals are percentile bootstraps over rounds (resampling whole rounds). These
are the estimators of the Open Bandit Pipeline (Saito et al., 2021), written here because
``obp`` no longer installs on current Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

ESTIMATORS = ("ipw", "snipw", "dr")

Estimator = Callable[
    [NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    float,
]


@dataclass(frozen=True)
class LoggedData:
    """Checked logged bandit feedback: actions, rewards, propensities, evaluation policy."""

    action: NDArray[np.int64]
    reward: NDArray[np.float64]
    pscore: NDArray[np.float64]
    action_dist: NDArray[np.float64]  # evaluation policy, (n_rounds, n_actions)

    @classmethod
    def build(
        cls, action: ArrayLike, reward: ArrayLike, pscore: ArrayLike, action_dist: ArrayLike
    ) -> LoggedData:
        """Validate shapes and ranges; ValueError names the offending input."""
        a = np.asarray(action)
        r = np.asarray(reward, dtype=np.float64)
        p = np.asarray(pscore, dtype=np.float64)
        d = np.asarray(action_dist, dtype=np.float64)
        if d.ndim == 3:  # OBP's (n_rounds, n_actions, len_list) with one position
            d = d[:, :, 0]
        n = a.shape[0] if a.ndim == 1 else -1
        if n < 1 or r.shape != (n,) or p.shape != (n,):
            raise ValueError(
                f"action, reward and pscore must be 1-D of one length >= 1, got shapes "
                f"{a.shape}, {r.shape}, {p.shape}"
            )
        if d.ndim != 2 or d.shape[0] != n:
            raise ValueError(f"action_dist must be (n_rounds={n}, n_actions), got {d.shape}")
        if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= d.shape[1]:
            raise ValueError(f"action must hold integers in 0..{d.shape[1] - 1}")
        if not np.all((p > 0) & (p <= 1)):
            raise ValueError("pscore must be in (0, 1]: every logged action needs a propensity")
        if not np.all(np.isfinite(r)):
            raise ValueError("reward must be finite")
        if np.any(d < 0) or not np.allclose(d.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("each row of action_dist must be probabilities summing to 1")
        return cls(a.astype(np.int64), r, p, d)

    @property
    def n_rounds(self) -> int:
        """Number of logged rounds."""
        return int(self.action.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions."""
        return int(self.action_dist.shape[1])

    def weights(self) -> NDArray[np.float64]:
        """Importance weights ``pi_e(a_i | i) / pscore_i``."""
        rows = np.arange(self.n_rounds)
        return self.action_dist[rows, self.action] / self.pscore


def ipw(w: NDArray[np.float64], r: NDArray[np.float64], *_: NDArray[np.float64]) -> float:
    """Inverse propensity weighting: ``mean(w r)``."""
    return float(np.mean(w * r))


def snipw(w: NDArray[np.float64], r: NDArray[np.float64], *_: NDArray[np.float64]) -> float:
    """Self-normalised IPW: ``sum(w r) / sum(w)`` (0 when no weight is positive)."""
    total = float(np.sum(w))
    return float(np.sum(w * r)) / total if total > 0 else 0.0


def dr(
    w: NDArray[np.float64],
    r: NDArray[np.float64],
    q_direct: NDArray[np.float64],
    q_logged: NDArray[np.float64],
) -> float:
    """Doubly robust: ``mean(q_direct + w (r - q_logged))`` where ``q_direct`` is the reward
    model's value of the evaluation policy and ``q_logged`` its value of the logged action."""
    return float(np.mean(q_direct + w * (r - q_logged)))


def mean_reward_model(data: LoggedData, prior: float = 1.0) -> NDArray[np.float64]:
    """``q(a)``: each action's mean logged reward, shrunk towards the overall mean by
    ``prior`` pseudo-rounds (shape ``(n_actions,)``)."""
    overall = float(np.mean(data.reward))
    sums = np.bincount(data.action, weights=data.reward, minlength=data.n_actions)
    counts = np.bincount(data.action, minlength=data.n_actions).astype(np.float64)
    return (sums + prior * overall) / (counts + prior)


@dataclass(frozen=True)
class Estimate:
    """One estimator's value with its 95% bootstrap interval."""

    name: str
    value: float
    ci95_low: float
    ci95_high: float


def _terms(
    data: LoggedData, q: NDArray[np.float64] | None
) -> tuple[NDArray[np.float64], ...]:
    w = data.weights()
    q_table = mean_reward_model(data) if q is None else np.asarray(q, dtype=np.float64)
    if q_table.ndim == 1:
        q_table = np.broadcast_to(q_table, data.action_dist.shape)
    if q_table.shape != data.action_dist.shape:
        raise ValueError(f"q must be (n_actions,) or {data.action_dist.shape}, got {q_table.shape}")
    q_direct = np.sum(data.action_dist * q_table, axis=1)
    q_logged = q_table[np.arange(data.n_rounds), data.action]
    return w, data.reward, q_direct, q_logged


_FUNCTIONS: dict[str, Estimator] = {"ipw": ipw, "snipw": snipw, "dr": dr}


def estimate(
    data: LoggedData,
    rng: np.random.Generator,
    *,
    n_bootstrap: int = 1000,
    q: ArrayLike | None = None,
) -> list[Estimate]:
    """IPW, SNIPW and DR estimates of the evaluation policy's mean reward, each with a 95%
    percentile-bootstrap interval from ``n_bootstrap`` resamples of the rounds."""
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    terms = _terms(data, None if q is None else np.asarray(q, dtype=np.float64))
    n = data.n_rounds
    boot = np.empty((len(ESTIMATORS), n_bootstrap))
    for b in range(n_bootstrap):  # one resample in memory at a time (logs can be large)
        i = rng.integers(0, n, size=n)
        resampled = tuple(t[i] for t in terms)
        for j, name in enumerate(ESTIMATORS):
            boot[j, b] = _FUNCTIONS[name](*resampled)
    out = []
    for j, name in enumerate(ESTIMATORS):
        lo, hi = np.quantile(boot[j], [0.025, 0.975])
        out.append(Estimate(name, _FUNCTIONS[name](*terms), float(lo), float(hi)))
    return out


def observed_mean(reward: ArrayLike, rng: np.random.Generator, n_bootstrap: int = 1000) -> Estimate:
    """The logging policy's own mean reward with the same kind of bootstrap interval."""
    r = np.asarray(reward, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError("reward must be a non-empty 1-D array")
    boot = np.array([r[rng.integers(0, r.size, size=r.size)].mean() for _ in range(n_bootstrap)])
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return Estimate("logged", float(r.mean()), float(lo), float(hi))
