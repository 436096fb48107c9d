"""A campaign's logged impressions as off-policy data (OBP's layout), and the evaluation
policies ``adgen ope`` compares: uniform, greedy, ts and version:N.

Actions are the campaign's variants in variant-id order (new variants only ever get
higher ids, so an action's index never changes as a campaign grows); ``action_ids`` name
each one ``v<variant id>@m<model version id>`` (``@manual`` for hand-written variants).
The logging policy's full probability vector of each round (``action_dist``) comes from
the allocation snapshot its impression carries; impressions without a snapshot (served
while snapshots could not be stored) are left out and counted. The reward of a round is
1 when its impression earned the campaign's reward event (click or conversion).
``context`` is the one-hot cell of the round (column 0: the campaign level),
``action_context`` the one-hot model version of each action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from adgen.bandit.thompson import win_probabilities
from adgen.db.campaigns import get_campaign
from adgen.db.models import AllocationSnapshot, Event, Variant
from adgen.errors import NotFoundError, ValidationError
from adgen.ope import LoggedData

POLICIES = ("uniform", "greedy", "ts", "version:N")
_VERSION = re.compile(r"version:(\d+)")


@dataclass(frozen=True)
class CampaignLog:
    """A campaign's logged bandit feedback, in OBP's layout (plus names)."""

    campaign_id: int
    action: NDArray[np.int64]
    reward: NDArray[np.float64]
    pscore: NDArray[np.float64]
    action_dist: NDArray[np.float64]  # the logging policy's, (n_rounds, n_actions)
    cells: NDArray[np.int64]  # index into cell_names per round
    cell_names: tuple[str, ...]
    variant_ids: NDArray[np.int64]
    model_version_ids: NDArray[np.int64]  # -1: hand-written
    skipped: int  # impressions without a snapshot, left out

    @property
    def n_rounds(self) -> int:
        """Rounds (impressions) in the log."""
        return int(self.action.size)

    @property
    def n_actions(self) -> int:
        """Actions (variants) of the campaign."""
        return int(self.variant_ids.size)

    @property
    def action_ids(self) -> list[str]:
        """Stable names of the actions: variant and model version."""
        return [
            f"v{v}@" + (f"m{m}" if m >= 0 else "manual")
            for v, m in zip(self.variant_ids.tolist(), self.model_version_ids.tolist(),
                            strict=True)
        ]

    def arrays(self) -> dict[str, NDArray[np.generic]]:
        """The arrays of the ``.npz`` export (OBP's keys first)."""
        versions = sorted(set(self.model_version_ids.tolist()))
        action_context = (
            self.model_version_ids[:, None] == np.array(versions)[None, :]
        ).astype(np.float64)
        context = np.zeros((self.n_rounds, len(self.cell_names)))
        context[np.arange(self.n_rounds), self.cells] = 1.0
        return {
            "n_rounds": np.array(self.n_rounds),
            "n_actions": np.array(self.n_actions),
            "action": self.action,
            "position": np.zeros(self.n_rounds, dtype=np.int64),
            "reward": self.reward,
            "pscore": self.pscore,
            "context": context,
            "action_context": action_context,
            "action_dist": self.action_dist[:, :, None],  # OBP: (rounds, actions, positions)
            "action_ids": np.array(self.action_ids),
            "variant_ids": self.variant_ids,
            "model_version_ids": self.model_version_ids,
            "action_context_versions": np.array(versions, dtype=np.int64),
            "cell_names": np.array(self.cell_names),
        }


def load_log(session: Session, campaign_id: int) -> CampaignLog:
    """Read ``campaign_id``'s impressions, rewards and snapshots (NotFoundError for an
    unknown campaign, ValidationError when it has no usable impression)."""
    campaign = get_campaign(session, campaign_id)
    variants = session.execute(
        select(Variant.id, Variant.model_version_id)
        .where(Variant.campaign_id == campaign_id).order_by(Variant.id)
    ).all()
    index = {vid: i for i, (vid, _) in enumerate(variants)}
    reward_type = "click" if campaign.reward == "click" else "conversion"
    rewarded = set(session.scalars(
        select(Event.impression_id).where(
            Event.campaign_id == campaign_id, Event.type == reward_type
        )
    ))
    rows = session.execute(
        select(Event.impression_id, Event.variant_id, Event.propensity, Event.snapshot_id,
               Event.cell)
        .where(Event.campaign_id == campaign_id, Event.type == "impression")
        .order_by(Event.id)
    ).all()
    snapshot_ids = sorted({r.snapshot_id for r in rows if r.snapshot_id is not None})
    dists: dict[int, NDArray[np.float64]] = {}
    for start in range(0, len(snapshot_ids), 1000):
        for snap in session.scalars(
            select(AllocationSnapshot).where(
                AllocationSnapshot.id.in_(snapshot_ids[start : start + 1000])
            )
        ):
            row = np.zeros(len(variants))
            for vid, p in zip(snap.variant_ids, snap.probabilities, strict=True):
                row[index[vid]] = p
            dists[snap.id] = row
    kept = [r for r in rows if r.snapshot_id in dists and r.propensity]
    if not kept:
        raise ValidationError(
            f"campaign {campaign_id} has no impressions with an allocation snapshot to "
            "evaluate; serve it through the allocator first"
        )
    cell_names = ("", *sorted({r.cell for r in kept if r.cell}))
    cell_index = {c: i for i, c in enumerate(cell_names)}
    return CampaignLog(
        campaign_id=campaign_id,
        action=np.array([index[r.variant_id] for r in kept], dtype=np.int64),
        reward=np.array([float(r.impression_id in rewarded) for r in kept]),
        pscore=np.array([float(r.propensity) for r in kept]),
        action_dist=np.stack([dists[r.snapshot_id] for r in kept]),
        cells=np.array([cell_index[r.cell or ""] for r in kept], dtype=np.int64),
        cell_names=cell_names,
        variant_ids=np.array([v for v, _ in variants], dtype=np.int64),
        model_version_ids=np.array([-1 if m is None else m for _, m in variants], dtype=np.int64),
        skipped=len(rows) - len(kept),
    )


def save_npz(log: CampaignLog, path: Path) -> None:
    """Write the OBP-layout arrays to ``path`` (.npz)."""
    with path.open("wb") as fh:
        np.savez_compressed(fh, **log.arrays())  # type: ignore[arg-type]


def evaluation_policy(
    log: CampaignLog, policy: str, rng: np.random.Generator, samples: int = 4000
) -> NDArray[np.float64]:
    """The evaluation policy's action distribution per round, ``(n_rounds, n_actions)``.

    ``uniform``: evenly over the round's served variants (those in its snapshot);
    ``greedy``: the served variant with the highest posterior mean over the whole log;
    ``ts``: Thompson sampling on those posteriors (P(best) among the served variants);
    ``version:N``: evenly over model version N's variants (rounds whose logging policy gave
    them no chance contribute nothing, see ``support``)."""
    served = log.action_dist > 0
    if policy == "uniform":
        return served / served.sum(axis=1, keepdims=True)
    successes = np.bincount(log.action, weights=log.reward, minlength=log.n_actions).astype(
        np.float64
    )
    trials = np.bincount(log.action, minlength=log.n_actions).astype(np.float64)
    if policy == "greedy":
        mean = (1.0 + successes) / (2.0 + trials)
        scores = np.where(served, mean[None, :], -1.0)
        out = np.zeros_like(log.action_dist)
        out[np.arange(log.n_rounds), np.argmax(scores, axis=1)] = 1.0
        return out
    if policy == "ts":
        out = np.zeros_like(log.action_dist)
        patterns, inverse = np.unique(served, axis=0, return_inverse=True)
        for j, live in enumerate(patterns):
            p = win_probabilities(successes, trials, rng, samples, live)
            out[inverse.ravel() == j] = p
        return out
    match = _VERSION.fullmatch(policy)
    if match is None:
        raise ValidationError(
            f"unknown policy {policy!r}; use one of {', '.join(POLICIES)} (N: a model version id)"
        )
    version = int(match.group(1))
    mine = log.model_version_ids == version
    if not mine.any():
        raise NotFoundError(
            f"model version {version} has no variants in campaign {log.campaign_id}"
        )
    return np.broadcast_to(mine / mine.sum(), log.action_dist.shape).copy()


def logged_data(log: CampaignLog, eval_dist: NDArray[np.float64]) -> LoggedData:
    """The log with an evaluation policy, ready for :func:`adgen.ope.estimate`."""
    return LoggedData.build(log.action, log.reward, log.pscore, eval_dist)


def support(log: CampaignLog, eval_dist: NDArray[np.float64]) -> float:
    """Share of the evaluation policy's probability mass that the logging policy could
    have played (1.0: the estimates are unbiased; less: they undercount)."""
    covered = np.sum(eval_dist * (log.action_dist > 0)) / log.n_rounds
    return float(covered)
