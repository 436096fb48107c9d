"""Training the reward model on stored evidence, judging it, and keeping the better one.

Evidence comes from live ``arm_stats`` (variants of campaigns, with their briefs), from
imported historical tests, or both (``settings.reward_source``). A share of it is held
out: whole campaigns/tests when there are at least ``MIN_UNITS_FOR_UNIT_SPLIT`` of them
(the model must generalise to new ones), otherwise single arms. Membership is a stable hash
of the campaign/test or arm, so an arm held out once stays held out as evidence grows: the
active model, trained on an earlier split, never saw the arms both models are judged on
(a fresh random split would judge it partly on its own training arms, and a better new
model would lose). The new model and the active one are scored on the same held-out arms;
the new one becomes active unless it is worse on the primary metric (pairwise accuracy
within campaigns/tests when there are enough pairs, else impression-level AUC), in which
case it is stored as ``rejected``.
Repository functions: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adgen.brief import Brief
from adgen.db.campaigns import brief_of
from adgen.db.models import ArmStats, Campaign, RewardModelRecord, Variant
from adgen.errors import ModelError
from adgen.history.evidence import load_historical
from adgen.model.artifacts import REWARD_MODEL, artifact_store
from adgen.reward.evaluation import evaluate
from adgen.reward.features import FeatureSpec
from adgen.reward.model import RewardConfig, RewardModel
from adgen.settings import Settings
from adgen.stats import successes_within
from adgen.vocabulary import RewardModelStatus

logger = logging.getLogger(__name__)

Source = Literal["live", "historical", "both"]
MIN_UNITS_FOR_UNIT_SPLIT = 10
MIN_PAIRS_FOR_PAIRWISE = 10


@dataclass(frozen=True)
class Evidence:
    """Arms to learn from: text, brief (None for historical tests), outcome, and where from.

    ``units`` are what the hold-out split keeps together (a campaign, a past test);
    ``groups`` are the comparable arms that evaluation pairs (a campaign; a test and image);
    ``keys`` name each arm for good (a variant; a test, image and text).
    """

    texts: list[str]
    briefs: list[Brief | None]
    successes: NDArray[np.float64]
    trials: NDArray[np.float64]
    units: list[str]
    groups: list[str]
    keys: list[str]
    window_start: datetime | None = None
    window_end: datetime | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: NDArray[np.int64]) -> Evidence:
        """The arms at ``idx``."""
        return replace(
            self,
            texts=[self.texts[i] for i in idx],
            briefs=[self.briefs[i] for i in idx],
            successes=self.successes[idx],
            trials=self.trials[idx],
            units=[self.units[i] for i in idx],
            groups=[self.groups[i] for i in idx],
            keys=[self.keys[i] for i in idx],
        )

    @staticmethod
    def concat(a: Evidence, b: Evidence) -> Evidence:
        """Both sets of arms; the window is the live one (historical tests have none)."""
        return Evidence(
            a.texts + b.texts,
            a.briefs + b.briefs,
            np.concatenate([a.successes, b.successes]),
            np.concatenate([a.trials, b.trials]),
            a.units + b.units,
            a.groups + b.groups,
            a.keys + b.keys,
            a.window_start or b.window_start,
            a.window_end or b.window_end,
        )


def live_evidence(session: Session) -> Evidence:
    """Variants with impressions, their campaign's brief and reward (clicks or conversions)."""
    rows = session.execute(
        select(Variant.text, ArmStats, Campaign)
        .join(ArmStats, ArmStats.variant_id == Variant.id)
        .join(Campaign, Campaign.id == Variant.campaign_id)
        .where(ArmStats.impressions > 0)
        .order_by(Variant.id)
    ).all()
    briefs: dict[int, Brief] = {}
    texts: list[str] = []
    arm_briefs: list[Brief | None] = []
    successes: list[int] = []
    trials: list[int] = []
    groups: list[str] = []
    keys: list[str] = []
    for text, stats, campaign in rows:
        if campaign.id not in briefs:
            briefs[campaign.id] = brief_of(campaign)
        texts.append(text)
        arm_briefs.append(briefs[campaign.id])
        hits = stats.conversions if campaign.reward == "conversion" else stats.clicks
        successes.append(successes_within(int(hits), int(stats.impressions)))
        trials.append(stats.impressions)
        groups.append(f"campaign:{campaign.id}")
        keys.append(f"variant:{stats.variant_id}")
    start, end = session.execute(
        select(func.min(Variant.created_at), func.max(ArmStats.updated_at))
        .join(ArmStats, ArmStats.variant_id == Variant.id)
        .where(ArmStats.impressions > 0)
    ).one()
    return Evidence(
        texts,
        arm_briefs,
        np.array(successes, dtype=np.float64),
        np.array(trials, dtype=np.float64),
        groups,
        groups,
        keys,
        start,
        end,
    )


def historical_evidence(session: Session) -> Evidence:
    """Arms of imported past tests (clicks); compared within a test and its group (image)."""
    arms = load_historical(session)
    return Evidence(
        [a.text for a in arms],
        [None] * len(arms),
        np.array([a.clicks for a in arms], dtype=np.float64),
        np.array([a.impressions for a in arms], dtype=np.float64),
        [f"test:{a.experiment_id}" for a in arms],
        [f"test:{a.experiment_id}:{a.group or ''}" for a in arms],
        [f"test:{a.experiment_id}:{a.group or ''}:{a.text}" for a in arms],
    )


def gather(session: Session, source: Source) -> Evidence:
    """The evidence of ``source``."""
    if source == "live":
        return live_evidence(session)
    if source == "historical":
        return historical_evidence(session)
    return Evidence.concat(live_evidence(session), historical_evidence(session))


def _stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` (the first 8 bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def holdout_split(
    units: list[str], keys: list[str], share: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(train, held-out) indices: whole units when there are enough of them, else arms.

    A unit (or arm) is held out when the stable hash of its name falls below ``share``, so
    the split of the arms seen before does not change as new ones arrive. At least one arm
    is held out and at least one kept for training.
    """
    by_unit = len(set(units)) >= MIN_UNITS_FOR_UNIT_SPLIT
    fractions = np.array(
        [_stable_fraction(u if by_unit else k) for u, k in zip(units, keys, strict=True)]
    )
    held = fractions < share
    if not held.any():
        held[np.argmin(fractions)] = True
    if held.all() and len(held) > 1:
        held[np.argmax(fractions)] = False
    return np.flatnonzero(~held), np.flatnonzero(held)


def config_from_settings(settings: Settings) -> RewardConfig:
    """The reward model's hyper-parameters from the settings."""
    return RewardConfig(
        features=FeatureSpec(handcrafted=settings.reward_handcrafted),
        embeddings=settings.reward_embeddings,
        alpha=settings.reward_alpha,
    )


def _figures(model: RewardModel, held: Evidence) -> dict[str, Any]:
    logits = model.score_logit(held.texts, held.briefs)
    return evaluate(
        logits, 1 / (1 + np.exp(-logits)), held.successes, held.trials, held.groups, held.texts
    )


def _primary(figures: dict[str, Any]) -> str:
    return "pairwise_acc" if figures["pairs"] >= MIN_PAIRS_FOR_PAIRWISE else "auc"


def active_record(session: Session) -> RewardModelRecord | None:
    """The newest reward model with status ``active``."""
    return session.scalars(
        select(RewardModelRecord)
        .where(RewardModelRecord.status == RewardModelStatus.ACTIVE)
        .order_by(RewardModelRecord.id.desc())
        .limit(1)
    ).first()


def load_record(session: Session, settings: Settings, record: RewardModelRecord) -> RewardModel:
    """The reward model of ``record``: its artifact (fetched and verified on any host), or
    for a record made before artifacts, its folder."""
    if record.artifact_sha256 is not None:
        return RewardModel.load(artifact_store(settings, session).fetch(record.artifact_sha256))
    return RewardModel.load(Path(record.path))


def load_active(session: Session, settings: Settings) -> RewardModel | None:
    """The active reward model, loaded from its artifact; None when none was trained yet."""
    record = active_record(session)
    if record is None:
        return None
    return load_record(session, settings, record)


def _previous(
    session: Session, settings: Settings
) -> tuple[RewardModelRecord | None, RewardModel | None]:
    record = active_record(session)
    if record is None:
        return None, None
    try:
        return record, load_record(session, settings, record)
    except ModelError as exc:
        logger.warning("active reward model %d cannot be loaded (%s): replacing it", record.id, exc)
        return record, None


def train_and_store(
    session: Session,
    settings: Settings,
    source: Source | None = None,
    *,
    config: RewardConfig | None = None,
) -> RewardModelRecord | None:
    """Train on ``source`` (default ``settings.reward_source``), evaluate, store, decide.

    Returns the new ``reward_models`` row (``active``, or ``rejected`` when it is worse than
    the active model on the same held-out arms), or None when there is too little
    evidence (fewer than ``settings.reward_min_arms`` arms, or no clicks or no misses).
    """
    source = source or settings.reward_source
    evidence = gather(session, source)
    clicks = float(evidence.successes.sum())
    misses = float((evidence.trials - evidence.successes).sum())
    if len(evidence) < settings.reward_min_arms or clicks <= 0 or misses <= 0:
        logger.info(
            "reward model not trained: %d arms with impressions from %s (need %d), "
            "%d successes, %d misses",
            len(evidence), source, settings.reward_min_arms, clicks, misses,
        )
        return None
    train_idx, held_idx = holdout_split(evidence.units, evidence.keys, settings.reward_holdout)
    train, held = evidence.subset(train_idx), evidence.subset(held_idx)
    model = RewardModel(config or config_from_settings(settings)).fit(
        train.texts, train.briefs, train.successes, train.trials
    )
    figures = _figures(model, held)
    primary = _primary(figures)
    metrics: dict[str, Any] = {**figures, "primary_metric": primary, "n_eval": len(held)}
    metrics["embeddings"] = model.embedding_model or "none"

    status = RewardModelStatus.ACTIVE
    previous, previous_model = _previous(session, settings)
    if previous is not None:
        metrics["previous_id"] = previous.id
        if previous_model is not None:
            before = _figures(previous_model, held)
            metrics["previous_metrics"] = before
            new, old = figures[primary], before[primary]
            if old is not None and (new is None or new < old):
                status = RewardModelStatus.REJECTED
    record = RewardModelRecord(
        path="",
        status=status,
        source=source,
        n_train=len(train),
        data_window_start=evidence.window_start,
        data_window_end=evidence.window_end,
        metrics=metrics,
    )
    session.add(record)
    session.flush()
    folder = (settings.var_dir / "reward_models" / str(record.id)).resolve()
    model.save(folder)
    record.path = str(folder)
    record.artifact_sha256 = artifact_store(settings, session).put(folder, REWARD_MODEL, session)
    if status == RewardModelStatus.ACTIVE and previous is not None:
        previous.status = RewardModelStatus.RETIRED
    session.flush()
    logger.info(
        "reward model %d %s: %s %.4f on %d held-out arms (previous: %s)",
        record.id, status, primary, figures[primary] if figures[primary] is not None else math.nan,
        len(held), metrics.get("previous_metrics", {}).get(primary),
    )
    return record
