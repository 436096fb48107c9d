"""Operator controls laid over any policy's choice probabilities (pure numpy).

- ``min_exploration``: a share of traffic spread evenly over the live arms, so every live
  arm gets at least ``min_exploration / live_arms``;
- ``cap`` over ``capped`` arms (a candidate model version's variants): together they get at
  most ``cap`` of the traffic, exactly, in expectation, and at least ``guaranteed``: a
  candidate under evaluation keeps a known share of traffic however little the policy
  thinks of it, so the gate's evidence arrives at a known rate;
- ``control`` arms (the incumbent's texts of the candidate's cycle, which the gate compares
  it with): together at least ``guaranteed`` too, so that both sides of the gate's
  comparison gather evidence at the same known rate. Within each of the two groups the
  guaranteed share is spread evenly, so every text of either side is measured however
  early bad luck made the policy drop it (the gate averages over texts, and a text the
  policy starves keeps the low estimate that starved it); what the policy gives a group
  beyond it follows the policy;
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
    control: tuple[int, ...] = ()

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
        for name in ("capped", "paused", "control"):
            arms = getattr(self, name)
            if any(not isinstance(a, int | np.integer) or isinstance(a, bool) for a in arms):
                raise ValueError(f"{name} must hold arm indices (ints), got {arms!r}")
            if len(set(arms)) != len(arms):
                raise ValueError(f"{name} lists an arm twice: {arms!r}")
        both = set(self.capped) & set(self.control)
        if both:
            raise ValueError(
                f"arms {sorted(both)} are both capped and control: a candidate's text cannot "
                "be the text it is compared with"
            )

    def check_arms(self, n_arms: int) -> None:
        """Raise ValueError when an index is out of range or every arm is paused."""
        for name in ("capped", "paused", "control"):
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
    (less than ``guaranteed``), they get exactly ``cap`` (``guaranteed``), and the control
    arms at least ``guaranteed``; the rest get the remainder. Each group is spread as the
    policy prefers, but each capped or control arm gets at least its even part of
    ``guaranteed`` and every arm the exploration floor where the shares leave room for it.
    A cap on every live arm cannot hold and is ignored (there is nothing else to serve).
    """
    live = controls.live_mask(base.shape[-1])
    n_live = int(live.sum())
    floor = controls.min_exploration / n_live
    p = (1.0 - controls.min_exploration) * base + floor * live
    group, ctrl = _members(controls.capped, live), _members(controls.control, live)
    if not group.any():
        ctrl[:] = False  # nothing of the candidate's is served here: nothing to compare with
    rest = live & ~group & ~ctrl
    g = controls.guaranteed
    held = float(p[group].sum())
    if sum(int(m.any()) for m in (group, ctrl, rest)) < 2:
        return p  # no candidate, or one group is every live arm: nothing to trade against
    if g == 0.0 and held <= controls.cap:
        return p  # nothing guaranteed and the cap not reached: the policy's own spread
    target = min(max(held, g), controls.cap) if group.any() else 0.0
    ctrl_target = max(float(p[ctrl].sum()), g) if ctrl.any() else 0.0
    ctrl_target = 1.0 - target if not rest.any() else min(ctrl_target, 1.0 - target)
    out = np.zeros_like(p)
    for members, share, least in (
        (group, target, g),
        (ctrl, ctrl_target, g),
        (rest, 1.0 - target - ctrl_target, 0.0),
    ):
        if members.any():
            size = int(members.sum())
            out[members] = _spread(base[members], share, max(floor, least / size))
    return out


def _members(arms: tuple[int, ...], live: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The live arms among ``arms``, as a mask."""
    mask = np.zeros_like(live)
    mask[list(arms)] = True
    return mask & live


def _spread(base: NDArray[np.float64], share: float, floor: float) -> NDArray[np.float64]:
    """Give ``share`` to a group in the policy's proportions, each arm at least ``floor``."""
    size = base.shape[0]
    if share <= 0.0:
        return np.zeros(size)
    mass = base.sum()
    preferred = base / mass if mass > 0 else np.full(size, 1.0 / size)
    uniform_part = min(1.0, floor * size / share)
    return share * ((1.0 - uniform_part) * preferred + uniform_part / size)
