"""Reading the evidence a training run or the gate needs (the caller owns the transaction).

A campaign belongs to the lineage of its locale's base model. Successes are clicks or
conversions, per the campaign's reward; a click counted before its impression arrived
never makes successes exceed trials.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from adgen.db.campaigns import brief_of
from adgen.db.models import LOCALES, ArmStats, Campaign, Event, ModelVersion, Variant
from adgen.errors import ModelError
from adgen.generator.prompts import build_prompt
from adgen.model.loading import resolve_base_model
from adgen.model.locales import base_model_for_locale
from adgen.settings import Settings
from adgen.stats import posterior_mean, prob_better
from adgen.training.pairs import ArmOutcome, CampaignEvidence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """Pooled successes out of trials."""

    successes: int
    trials: int


@dataclass(frozen=True)
class Comparison:
    """A version's variants against the incumbent's, on the same campaigns, since the
    version was created; ``basis`` says what it was compared with."""

    campaigns: list[int]
    candidate: Outcome
    incumbent: Outcome
    basis: str
    since: datetime

    @property
    def prob_better(self) -> float:
        """P(the version's rate > the incumbent's rate)."""
        return prob_better(
            self.candidate.successes,
            self.candidate.trials,
            self.incumbent.successes,
            self.incumbent.trials,
        )

    def means(self) -> tuple[float, float]:
        """Posterior means of the version's and the incumbent's rates."""
        return (
            float(posterior_mean(self.candidate.successes, self.candidate.trials)),
            float(posterior_mean(self.incumbent.successes, self.incumbent.trials)),
        )

    def details(self) -> dict[str, object]:
        """JSON-ready figures for ``gate_decisions.details``."""
        cand_mean, inc_mean = self.means()
        return {
            "campaigns": self.campaigns,
            "basis": self.basis,
            "since": self.since.isoformat(),
            "candidate_mean": round(cand_mean, 6),
            "incumbent_mean": round(inc_mean, 6),
        }


def compare(session: Session, version: ModelVersion, incumbent: ModelVersion | None) -> Comparison:
    """Pooled live evidence of ``version``'s variants against ``incumbent``'s.

    Only events since ``version`` was created count, so both sides face the same audience
    at the same time. Where the incumbent has no served variants in those campaigns (the
    campaign's texts were written by hand, say), every other variant there is the basis.
    """
    campaigns = candidate_campaigns(session, version.id)
    since = version.created_at
    mine = version_outcome(session, [version.id], campaigns, since)
    theirs, basis = Outcome(0, 0), "incumbent"
    if incumbent is not None and incumbent.id != version.id:
        theirs = version_outcome(session, [incumbent.id], campaigns, since)
    if theirs.trials == 0:
        theirs, basis = others_outcome(session, version.id, campaigns, since), "other_variants"
    return Comparison(campaigns, mine, theirs, basis, since)


def lineage_of(settings: Settings, locale: str) -> str:
    """The lineage key of ``locale``: its base model's resolved name (as the registry keys it)."""
    return resolve_base_model(base_model_for_locale(settings, locale), settings.cache_dir).name


def lineage_campaigns(
    session: Session, settings: Settings, base_name: str, *, active_only: bool = False
) -> list[Campaign]:
    """Campaigns whose locale's base model is ``base_name``, oldest first."""
    locales = [loc for loc, name in _locale_lineages(settings).items() if name == base_name]
    stmt = select(Campaign).where(Campaign.locale.in_(locales)).order_by(Campaign.id)
    if active_only:
        stmt = stmt.where(Campaign.status == "active")
    return list(session.scalars(stmt))


def lineages(session: Session, settings: Settings) -> list[str]:
    """The base models of the locales that active campaigns use, among ``train_locales``."""
    locales = session.scalars(select(Campaign.locale).where(Campaign.status == "active").distinct())
    names = _locale_lineages(settings)
    return sorted({names[loc] for loc in locales if loc in names and loc in settings.train_locales})


def _locale_lineages(settings: Settings) -> dict[str, str]:
    """Each locale's lineage; a locale whose base model cannot be found is left out."""
    out: dict[str, str] = {}
    for locale in LOCALES:
        try:
            out[locale] = lineage_of(settings, locale)
        except ModelError as exc:
            logger.warning("campaigns in %s are not trained: %s", locale, exc)
    return out


def campaign_evidence(session: Session, campaigns: Sequence[Campaign]) -> list[CampaignEvidence]:
    """Each campaign's chat prompt and its non-rejected variants' outcomes (from arm_stats)."""
    by_id = {c.id: c for c in campaigns}
    rows = session.execute(
        select(
            Variant.campaign_id,
            Variant.id,
            Variant.text,
            ArmStats.impressions,
            ArmStats.clicks,
            ArmStats.conversions,
        )
        .join(ArmStats, ArmStats.variant_id == Variant.id)
        .where(Variant.campaign_id.in_(list(by_id)), Variant.status != "rejected")
        .order_by(Variant.campaign_id, Variant.id)
    ).all()
    arms: dict[int, list[ArmOutcome]] = {cid: [] for cid in by_id}
    for cid, vid, text, impressions, clicks, conversions in rows:
        successes = clicks if by_id[cid].reward == "click" else conversions
        arms[cid].append(ArmOutcome(vid, text, min(successes, impressions), impressions))
    return [
        CampaignEvidence(cid, build_prompt(brief_of(by_id[cid])).messages(), tuple(arms[cid]))
        for cid in by_id
    ]


def evidence_window(
    session: Session, campaign_ids: Sequence[int]
) -> tuple[datetime | None, datetime | None]:
    """First and last ``received_time`` of the events of these campaigns (None when none)."""
    if not campaign_ids:
        return None, None
    first, last = session.execute(
        select(func.min(Event.received_time), func.max(Event.received_time)).where(
            Event.campaign_id.in_(list(campaign_ids))
        )
    ).one()
    return first, last


def version_outcome(
    session: Session, version_ids: Sequence[int], campaign_ids: Sequence[int], since: datetime
) -> Outcome:
    """Pooled successes / impressions of these versions' variants in these campaigns,
    counting only events at or after ``since`` (the candidate's start)."""
    return _outcome(session, Variant.model_version_id.in_(list(version_ids)), campaign_ids, since)


def others_outcome(
    session: Session, version_id: int, campaign_ids: Sequence[int], since: datetime
) -> Outcome:
    """Pooled successes / impressions of every variant not written by ``version_id``."""
    condition = (Variant.model_version_id.is_(None)) | (Variant.model_version_id != version_id)
    return _outcome(session, condition, campaign_ids, since)


def candidate_campaigns(session: Session, version_id: int) -> list[int]:
    """Campaigns where ``version_id`` has variants."""
    return list(
        session.scalars(
            select(Variant.campaign_id)
            .where(Variant.model_version_id == version_id)
            .distinct()
            .order_by(Variant.campaign_id)
        )
    )


def _outcome(
    session: Session, variant_filter: object, campaign_ids: Sequence[int], since: datetime
) -> Outcome:
    if not campaign_ids:
        return Outcome(0, 0)
    success = case(
        (
            ((Campaign.reward == "click") & (Event.type == "click"))
            | ((Campaign.reward == "conversion") & (Event.type == "conversion")),
            1,
        ),
        else_=0,
    )
    impression = case((Event.type == "impression", 1), else_=0)
    rows = session.execute(
        select(Event.variant_id, func.sum(impression), func.sum(success))
        .join(Variant, Variant.id == Event.variant_id)
        .join(Campaign, Campaign.id == Event.campaign_id)
        .where(
            Event.campaign_id.in_(list(campaign_ids)),
            Event.event_time >= since,
            variant_filter,  # type: ignore[arg-type]
        )
        .group_by(Event.variant_id)
    ).all()
    trials = sum(int(n or 0) for _, n, _ in rows)
    successes = sum(min(int(s or 0), int(n or 0)) for _, n, s in rows)
    return Outcome(successes, trials)
