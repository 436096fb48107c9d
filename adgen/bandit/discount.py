"""Discounting old evidence with a half-life, from running totals (pure numpy).

``arm_stats`` keeps totals only; each refresh adds what changed since the previous refresh
and decays what was there by ``0.5 ** (elapsed / half_life)``. Totals seen for the first
time count in full (their age is unknown), so discounting acts from then on.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from adgen.bandit.policy import check_counts
from adgen.stats import successes_within


@dataclass
class _Arm:
    total_s: float
    total_n: float
    s: float
    n: float
    t: float


class DiscountedEvidence:
    """Per-key exponentially discounted successes and trials."""

    def __init__(self, half_life_s: float) -> None:
        if not isinstance(half_life_s, int | float) or not half_life_s > 0 or half_life_s == float(
            "inf"
        ):
            raise ValueError(f"half_life_s must be a positive finite number, got {half_life_s!r}")
        self.half_life_s = float(half_life_s)
        self._arms: dict[Hashable, _Arm] = {}

    def update(
        self, keys: Sequence[Hashable], successes: ArrayLike, trials: ArrayLike, now_s: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Discounted counts for ``keys`` given their current totals at time ``now_s``.

        Keys absent from this call are forgotten. Totals that went down (a reset) restart
        that key from its new totals.
        """
        s_tot, n_tot = check_counts(successes, trials, len(keys))
        if len(set(keys)) != len(keys):
            raise ValueError(f"keys must be unique, got {list(keys)!r}")
        out_s = np.empty(len(keys))
        out_n = np.empty(len(keys))
        arms: dict[Hashable, _Arm] = {}
        for i, key in enumerate(keys):
            s, n = float(s_tot[i]), float(n_tot[i])
            prev = self._arms.get(key)
            if prev is None or s < prev.total_s or n < prev.total_n:
                arm = _Arm(s, n, s, n, now_s)
            else:
                if now_s < prev.t:
                    raise ValueError(f"now_s went backwards: {now_s!r} < {prev.t!r}")
                decay = 0.5 ** ((now_s - prev.t) / self.half_life_s)
                arm = _Arm(
                    s, n, prev.s * decay + (s - prev.total_s), prev.n * decay + (n - prev.total_n),
                    now_s,
                )
            arms[key] = arm
            # discounting keeps successes <= trials: both decay by the same factor
            out_s[i], out_n[i] = successes_within(arm.s, arm.n), arm.n
        self._arms = arms
        return out_s, out_n
