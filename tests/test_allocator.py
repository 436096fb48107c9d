"""The allocator over the real PostgreSQL: what it serves, with which probabilities."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from adgen.allocator import Allocator
from adgen.brief import Brief
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.models import ArmStats, Campaign, ModelVersion, Variant
from adgen.errors import ConflictError, NotFoundError, StorageError
from adgen.settings import Settings

BRIEF = Brief(name="c", product="shoes", brand="Acme", audience="runners")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _settings(**kw: object) -> Settings:
    return Settings(admin_token="a", token_secret="s", **kw)  # type: ignore[arg-type]


def _campaign(session: Session, n: int, *, reward: str = "click", version: int | None = None,
              status: str = "active") -> tuple[int, list[int]]:
    campaign = create_campaign(session, BRIEF.model_copy(update={"reward": reward}))
    campaign.status = status
    variants = add_variants(session, campaign.id, [f"text {i}" for i in range(n)],
                            model_version_id=version)
    return campaign.id, [v.id for v in variants]


def _set_stats(session: Session, variant_id: int, impressions: int, clicks: int,
               conversions: int = 0) -> None:
    session.execute(
        sa.update(ArmStats).where(ArmStats.variant_id == variant_id)
        .values(impressions=impressions, clicks=clicks, conversions=conversions)
    )


def _version(session: Session, status: str) -> int:
    version = ModelVersion(base_model="smollm2", status=status)
    session.add(version)
    session.flush()
    return version.id


def _campaign_with_candidate(session: Session) -> tuple[int, int, int, list[int], list[int]]:
    """An active and a candidate version, a campaign with 2 of the active one's texts and 2
    of the candidate's: (campaign, active, candidate, the active texts, the candidate's)."""
    active = _version(session, "active")
    candidate = _version(session, "candidate")
    cid, incumbents = _campaign(session, 2, version=active)
    new = [v.id for v in add_variants(session, cid, ["new a", "new b"],
                                      model_version_id=candidate)]
    return cid, active, candidate, incumbents, new


def test_candidate_cap_rolled_back_versions_and_rewards(pg_sessions: sessionmaker[Session]) -> None:
    with pg_sessions.begin() as session:
        active = _version(session, "active")
        candidate = _version(session, "candidate")
        rolled_back = _version(session, "rolled_back")
        cid, incumbents = _campaign(session, 2, version=active)
        new = [v.id for v in add_variants(session, cid, ["new a", "new b"],
                                          model_version_id=candidate)]
        gone = add_variants(session, cid, ["gone"], model_version_id=rolled_back)[0].id
        for vid in incumbents:
            _set_stats(session, vid, 1000, 20)
        for vid in new:  # the candidate's variants look far better, yet stay capped
            _set_stats(session, vid, 1000, 90)
        conv_cid, conv_ids = _campaign(session, 2, reward="conversion")
        _set_stats(session, conv_ids[0], 1000, 500, conversions=1)
        _set_stats(session, conv_ids[1], 1000, 10, conversions=60)

    allocator = Allocator(pg_sessions, _settings(candidate_traffic_cap=0.15),
                          np.random.default_rng(0))
    assert allocator.refresh()
    arms = {a.variant_id: a for a in allocator.arms(cid)}
    assert gone not in arms
    assert sum(arms[v].probability for v in new) == pytest.approx(0.15)
    assert {v for v in arms if arms[v].candidate} == set(new)
    served = [allocator.allocate(cid) for _ in range(20_000)]
    share = np.mean([a.variant_id in new for a in served])
    assert share == pytest.approx(0.15, abs=0.01)
    assert all(a.propensity == pytest.approx(arms[a.variant_id].probability) for a in served)
    assert gone not in {a.variant_id for a in served}
    assert len({a.impression_id for a in served}) == len(served)

    # conversion campaigns learn from conversions, not clicks
    conv = {a.variant_id: a for a in allocator.arms(conv_cid)}
    assert (conv[conv_ids[0]].successes, conv[conv_ids[1]].successes) == (1, 60)
    assert conv[conv_ids[1]].probability > 0.99


def test_a_trailing_candidate_keeps_its_guaranteed_traffic(
    pg_sessions: sessionmaker[Session],
) -> None:
    """Candidate texts far worse than the incumbent's would get almost no traffic from the
    bandit alone; the floor keeps them at exactly ``candidate_traffic_floor`` so the gate
    gets its evidence."""
    with pg_sessions.begin() as session:
        cid, _, _, incumbents, new = _campaign_with_candidate(session)
        for vid in incumbents:
            _set_stats(session, vid, 5000, 250)
        for vid in new:
            _set_stats(session, vid, 1000, 10)
    allocator = Allocator(pg_sessions, _settings(candidate_traffic_floor=0.08),
                          np.random.default_rng(0))
    assert allocator.refresh()
    arms = {a.variant_id: a for a in allocator.arms(cid)}
    assert sum(arms[v].probability for v in new) == pytest.approx(0.08)
    served = [allocator.allocate(cid) for _ in range(20_000)]
    assert np.mean([a.variant_id in new for a in served]) == pytest.approx(0.08, abs=0.01)
    assert all(a.propensity == pytest.approx(arms[a.variant_id].probability) for a in served)


def test_the_texts_a_candidate_is_compared_with_get_the_floor_too(
    pg_sessions: sessionmaker[Session],
) -> None:
    """The incumbent's texts of the candidate's cycle (``rollout_of``) trail its proven ones,
    so the bandit alone would starve them and the gate would compare the candidate with
    a few hundred impressions of them; they get the floor too, each text its even part.
    Once the candidate is decided they are ordinary texts again."""
    with pg_sessions.begin() as session:
        cid, active, candidate, proven, new = _campaign_with_candidate(session)
        same_cycle = [v.id for v in add_variants(session, cid, ["same a", "same b"],
                                                 model_version_id=active)]
        for vid in proven:
            _set_stats(session, vid, 5000, 250)
        for vid in same_cycle + new:
            _set_stats(session, vid, 1000, 10)
        for vid in same_cycle:
            session.get_one(Variant, vid).rollout_of = candidate
    allocator = Allocator(pg_sessions, _settings(candidate_traffic_floor=0.08),
                          np.random.default_rng(0))
    assert allocator.refresh()
    arms = {a.variant_id: a for a in allocator.arms(cid)}
    for group in (new, same_cycle):
        assert [arms[v].probability for v in group] == pytest.approx([0.04, 0.04])
    served = [allocator.allocate(cid) for _ in range(20_000)]
    assert np.mean([a.variant_id in same_cycle for a in served]) == pytest.approx(0.08, abs=0.01)
    assert all(a.propensity == pytest.approx(arms[a.variant_id].probability) for a in served)
    with pg_sessions.begin() as session:
        session.get_one(ModelVersion, candidate).status = "rolled_back"
    assert allocator.refresh()
    arms = {a.variant_id: a for a in allocator.arms(cid)}
    assert set(arms) == set(proven + same_cycle)
    assert sum(arms[v].probability for v in same_cycle) < 0.01


def test_the_candidate_floor_cannot_exceed_its_cap() -> None:
    with pytest.raises(ValueError, match="CANDIDATE_TRAFFIC_FLOOR"):
        _settings(candidate_traffic_cap=0.1, candidate_traffic_floor=0.2)


def test_unknown_paused_and_empty_campaigns(pg_sessions: sessionmaker[Session]) -> None:
    with pg_sessions.begin() as session:
        paused, _ = _campaign(session, 2, status="paused")
        empty, _ = _campaign(session, 0)
    allocator = Allocator(pg_sessions, _settings(), np.random.default_rng(0))
    with pytest.raises(StorageError, match="no posteriors loaded"):
        allocator.allocate(paused)
    allocator.refresh()
    with pytest.raises(NotFoundError, match="does not exist"):
        allocator.allocate(10**6)
    with pytest.raises(ConflictError, match="paused"):
        allocator.allocate(paused)
    with pytest.raises(ConflictError, match="no active variants"):
        allocator.allocate(empty)
    with pg_sessions.begin() as session:
        session.execute(sa.update(Campaign).where(Campaign.id == paused).values(status="active"))
    allocator.refresh()
    assert allocator.allocate(paused).campaign_id == paused


def test_discounting_lets_a_drifting_arm_take_over_and_age_is_reported(
    pg_sessions: sessionmaker[Session],
) -> None:
    with pg_sessions.begin() as session:
        cid, (a, b) = _campaign(session, 2)
        _set_stats(session, a, 10_000, 500)
        _set_stats(session, b, 10_000, 300)
    clock = FakeClock()
    allocator = Allocator(pg_sessions, _settings(discount_half_life_s=60.0),
                          np.random.default_rng(0), clock=clock)
    assert allocator.refresh_age_s == float("inf")
    allocator.refresh()
    assert {x.variant_id: x.probability for x in allocator.arms(cid)}[a] > 0.99
    # ten half-lives later, b has done better lately
    clock.now += 600
    with pg_sessions.begin() as session:
        _set_stats(session, a, 11_000, 520)
        _set_stats(session, b, 11_000, 400)
    allocator.refresh()
    arms = {x.variant_id: x for x in allocator.arms(cid)}
    assert arms[a].trials == pytest.approx(10_000 / 1024 + 1000)
    assert arms[b].probability > 0.99
    clock.now += 2.5
    assert allocator.refresh_age_s == pytest.approx(2.5)


def test_a_refresh_with_unchanged_evidence_keeps_the_policy(
    pg_sessions: sessionmaker[Session],
) -> None:
    with pg_sessions.begin() as session:
        cid, (a, _b) = _campaign(session, 2)
    allocator = Allocator(pg_sessions, _settings(), np.random.default_rng(0))
    allocator.refresh()
    policy = allocator._campaigns[cid].policy
    allocator.refresh()
    assert allocator._campaigns[cid].policy is policy
    with pg_sessions.begin() as session:
        _set_stats(session, a, 10, 5)
    allocator.refresh()
    assert allocator._campaigns[cid].policy is not policy


def test_background_refresher_picks_up_new_variants(pg_sessions: sessionmaker[Session]) -> None:
    with pg_sessions.begin() as session:
        cid, _ = _campaign(session, 0)
    allocator = Allocator(pg_sessions, _settings(refresh_interval_s=0.05), np.random.default_rng(0))
    allocator.start()
    try:
        assert allocator.running
        with pg_sessions.begin() as session:
            (vid,) = [v.id for v in add_variants(session, cid, ["hello"])]
        allocator.wake()
        for _ in range(200):
            if allocator.arms(cid):
                break
            time.sleep(0.02)
        assert allocator.allocate(cid).variant_id == vid
    finally:
        allocator.stop()
    assert not allocator.running

