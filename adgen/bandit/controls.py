"""Operator controls laid over any policy's choice probabilities (pure numpy).

- ``min_exploration``: a share of traffic spread evenly over the live arms, so every live
  arm gets at least ``min_exploration / live_arms``;
- ``cap`` over ``capped`` arms (a candidate model version's variants): together they get at
  most ``cap`` of the traffic, exactly, in expectation, and at least ``guaranteed``: a
  candidate under evaluation keeps a known share of traffic however little the policy
  thinks of it, so the gate's evidence arrives at a known rate;
- ``paused`` arms get nothing.

Because the controls transform the probability vector that choices are drawn from, the
propensity logged with each choice stays the true probability of that choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Controls:
    """Traffic controls of one campaign; arm indices refer to the policy's arms."""

    min_exploration: float = 0.0
    cap: float = 1.0
    guaranteed: float = 0.0
    capped: tuple[int, ...] = ()
    paused: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_exploration < 1.0:
            raise ValueError(
                f"min_exploration must be in [0, 1), got {self.min_exploration!r}; "
                "it is the share of traffic spread evenly over live arms"
            )
        if not 0.0 < self.cap <= 1.0:
            raise ValueError(f"cap must be in (0, 1], got {self.cap!r}; 1 means no cap")
        if not 0.0 <= self.guaranteed <= self.cap:
            raise ValueError(
                f"guaranteed must be in [0, cap={self.cap!r}], got {self.guaranteed!r}: it is "
                "the least share of traffic the capped arms get together"
            )
        for name in ("capped", "paused"):
            arms = getattr(self, name)
            if any(not isinstance(a, int | np.integer) or isinstance(a, bool) for a in arms):
                raise ValueError(f"{name} must hold arm indices (ints), got {arms!r}")
            if len(set(arms)) != len(arms):
                raise ValueError(f"{name} lists an arm twice: {arms!r}")

    def check_arms(self, n_arms: int) -> None:
        """Raise ValueError when an index is out of range or every arm is paused."""
        for name in ("capped", "paused"):
            bad = [a for a in getattr(self, name) if not 0 <= a < n_arms]
            if bad:
                raise ValueError(f"{name} arm indices {bad} are outside 0..{n_arms - 1}")
        if len(self.paused) >= n_arms:
            raise ValueError(f"all {n_arms} arms are paused: nothing left to serve")

    def live_mask(self, n_arms: int) -> NDArray[np.bool_]:
        """True for arms that may be served."""
        mask = np.ones(n_arms, dtype=bool)
        mask[list(self.paused)] = False
        return mask


NO_CONTROLS = Controls()


def apply_controls(base: NDArray[np.float64], controls: Controls) -> NDArray[np.float64]:
    """Turn a policy's distribution over live arms into the served distribution.

    ``base`` sums to one and is zero on paused arms. The exploration floor mixes in the
    uniform distribution over live arms; if the capped arms then hold more than ``cap``
    (less than ``guaranteed``), they get exactly ``cap`` (``guaranteed``) and the rest the
    remainder, each group spread as the policy prefers but keeping the floor where the cap
    leaves room for it. A cap on every live arm cannot hold and is ignored (there is
    nothing else to serve).
    """
    live = controls.live_mask(base.shape[-1])
    n_live = int(live.sum())
    floor = controls.min_exploration / n_live
    p = (1.0 - controls.min_exploration) * base + floor * live
    group = np.zeros_like(live)
    group[list(controls.capped)] = True
    group &= live
    n_group = int(group.sum())
    held = float(p[group].sum())
    if n_group == 0 or n_group == n_live or controls.guaranteed <= held <= controls.cap:
        return p
    target = min(max(held, controls.guaranteed), controls.cap)
    rest = live & ~group
    out = np.zeros_like(p)
    for members, share in ((group, target), (rest, 1.0 - target)):
        out[members] = _spread(base[members], share, floor)
    return out


def _spread(base: NDArray[np.float64], share: float, floor: float) -> NDArray[np.float64]:
    """Give ``share`` to a group in the policy's proportions, each arm at least ``floor``."""
    size = base.shape[0]
    mass = base.sum()
    preferred = base / mass if mass > 0 else np.full(size, 1.0 / size)
    uniform_part = min(1.0, floor * size / share)
    return share * ((1.0 - uniform_part) * preferred + uniform_part / size)
