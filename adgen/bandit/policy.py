"""The policy facade: validates inputs, caches the served distribution, draws choices.

Subclasses implement one method, ``_base_probabilities``: the probability of each live arm
under the current evidence. The facade lays the operator controls over it
(:mod:`adgen.bandit.controls`) and serves choices from a pre-drawn block, so a decision
costs a list lookup and the propensity of each choice is exactly the probability it was
drawn with.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from adgen.bandit.controls import NO_CONTROLS, Controls, apply_controls

DEFAULT_BLOCK = 1024


class Choice(NamedTuple):
    """One decision: the arm index and the probability that the policy chose it."""

    arm: int
    propensity: float


def check_counts(
    successes: ArrayLike, trials: ArrayLike, n_arms: int | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validated float arrays of per-arm successes and trials (ValueError names the value)."""
    s = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if s.shape != n.shape or s.ndim < 1:
        raise ValueError(
            f"successes and trials must be arrays of the same shape, got {s.shape} and {n.shape}"
        )
    if n_arms is not None and s.shape != (n_arms,):
        raise ValueError(f"expected counts for {n_arms} arms, got shape {s.shape}")
    if not (np.isfinite(s).all() and np.isfinite(n).all()):
        raise ValueError(f"counts must be finite, got successes={s!r}, trials={n!r}")
    if (s < 0).any() or (n < 0).any():
        raise ValueError(f"counts must be >= 0, got successes={s!r}, trials={n!r}")
    if (s > n).any():
        raise ValueError(f"successes exceed trials: successes={s!r}, trials={n!r}")
    return s, n


class Policy(ABC):
    """A bandit policy over ``n_arms`` Bernoulli arms with an injected random generator."""

    name: ClassVar[str]

    def __init__(
        self,
        n_arms: int,
        rng: np.random.Generator,
        *,
        controls: Controls = NO_CONTROLS,
        block_size: int = DEFAULT_BLOCK,
    ) -> None:
        if isinstance(n_arms, bool) or not isinstance(n_arms, int | np.integer) or n_arms < 1:
            raise ValueError(f"n_arms must be a positive int, got {n_arms!r}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(
                f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {rng!r}"
            )
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be a positive int, got {block_size!r}")
        self.n_arms = int(n_arms)
        self.rng = rng
        self.block_size = block_size
        self._successes = np.zeros(self.n_arms)
        self._trials = np.zeros(self.n_arms)
        self._controls = NO_CONTROLS
        self.set_controls(controls)

    # --- evidence and controls ---------------------------------------------------------
    @property
    def successes(self) -> NDArray[np.float64]:
        """Per-arm successes in force (a copy)."""
        return self._successes.copy()

    @property
    def trials(self) -> NDArray[np.float64]:
        """Per-arm trials in force (a copy)."""
        return self._trials.copy()

    @property
    def controls(self) -> Controls:
        """The controls in force."""
        return self._controls

    def set_evidence(self, successes: ArrayLike, trials: ArrayLike) -> None:
        """Replace all evidence (a batched refresh); fractional counts allowed (discounting)."""
        self._successes, self._trials = check_counts(successes, trials, self.n_arms)
        self._invalidate()

    def update(self, arm: int, reward: float) -> None:
        """Add one observation: ``reward`` in [0, 1] for ``arm`` (sequential learning)."""
        self._check_arm(arm)
        if isinstance(reward, bool):
            reward = float(reward)
        if not isinstance(reward, int | float | np.number) or not 0.0 <= reward <= 1.0:
            raise ValueError(f"reward must be a number in [0, 1], got {reward!r}")
        self._successes[arm] += reward
        self._trials[arm] += 1.0
        self._invalidate()

    def set_controls(self, controls: Controls) -> None:
        """Apply operator controls (pausing, exploration floor, cap)."""
        if not isinstance(controls, Controls):
            raise ValueError(f"controls must be a Controls, got {controls!r}")
        controls.check_arms(self.n_arms)
        self._controls = controls
        self._invalidate()

    # --- decisions ---------------------------------------------------------------------
    def probabilities(self) -> NDArray[np.float64]:
        """Probability that the next choice is each arm (sums to one; a copy)."""
        return self._served().copy()

    def choose(self) -> Choice:
        """One decision with its propensity."""
        if self._pos >= len(self._block):
            self._refill()
        arm = self._block[self._pos]
        self._pos += 1
        return Choice(arm, self._p_list[arm])

    def choose_many(self, n: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """``n`` independent decisions at once: arms and their propensities."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        p = self._served()
        arms = self._draw(int(n))
        return arms, p[arms]

    # --- implementation ----------------------------------------------------------------
    @abstractmethod
    def _base_probabilities(self, live: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Probability of each arm under the evidence, over ``live`` arms only (sums to 1)."""

    def _invalidate(self) -> None:
        self._p: NDArray[np.float64] | None = None
        self._p_list: list[float] = []
        self._cdf: NDArray[np.float64] | None = None
        self._block: list[int] = []
        self._pos = 0

    def _served(self) -> NDArray[np.float64]:
        if self._p is None:
            live = self._controls.live_mask(self.n_arms)
            p = apply_controls(self._base_probabilities(live), self._controls)
            p = np.where(live, np.maximum(p, 0.0), 0.0)
            p /= p.sum()
            self._p = p
            self._p_list = p.tolist()
            cdf = np.cumsum(p)
            cdf /= cdf[-1]
            self._cdf = cdf
        return self._p

    def _draw(self, n: int) -> NDArray[np.int64]:
        self._served()
        assert self._cdf is not None
        return np.searchsorted(self._cdf, self.rng.random(n), side="right").astype(np.int64)

    def _refill(self) -> None:
        self._block = self._draw(self.block_size).tolist()
        self._pos = 0

    def _check_arm(self, arm: int) -> None:
        if isinstance(arm, bool) or not isinstance(arm, int | np.integer) or not (
            0 <= arm < self.n_arms
        ):
            raise ValueError(f"arm must be an int in 0..{self.n_arms - 1}, got {arm!r}")
