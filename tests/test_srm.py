"""Sample-ratio mismatch: the chi-square test, and the real allocator's snapshots on SQLite
(healthy traffic rarely alarms; a logging fault dropping 10% of one arm is caught)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from scipy import stats as scipy_stats
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from adgen.allocator import Allocator
from adgen.brief import Brief
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import AllocationSnapshot, ArmStats, Event
from adgen.errors import ValidationError
from adgen.events import make_event
from adgen.settings import Settings
from adgen.srm import SRM_P_THRESHOLD, campaign_srm, expected_counts, srm_test

TRUE_CTR = (0.04, 0.05, 0.07)
SEEDS = 200


def test_srm_test_flags_a_broken_split_only_once_ready() -> None:
    fine = srm_test([510, 490], [500.0, 500.0])
    assert fine.ready and not fine.flagged and fine.df == 1
    assert fine.p_value == pytest.approx(scipy_stats.chi2.sf(0.4, 1))  # 2 x 10^2 / 500
    broken = srm_test([600, 400], [500.0, 500.0])
    assert broken.ready and broken.flagged and broken.p_value < SRM_P_THRESHOLD
    early = srm_test([9, 0], [4.5, 4.5])  # an arm expects < 5: not judged yet
    assert not early.ready and not early.flagged
    with pytest.raises(ValueError, match="equal-length"):
        srm_test([1, 2], [1.0])


def test_expected_counts_sum_impressions_times_served_probability() -> None:
    snapshots = {1: ([10, 11], [0.5, 0.5]), 2: ([10, 11], [0.9, 0.1])}
    served = {(1, 10): 40, (1, 11): 60, (2, 10): 95, (2, 11): 5, (99, 10): 7}  # 99: unknown
    arms = {a.variant_id: a for a in expected_counts(snapshots, served)}
    assert arms[10].observed == 135 and arms[11].observed == 65
    assert arms[10].expected == pytest.approx(50 + 90)
    assert arms[11].expected == pytest.approx(50 + 10)


def test_only_impressions_carry_a_snapshot_id() -> None:
    fields = {"event_id": "e1", "impression_id": "i1", "campaign_id": 1, "variant_id": 2,
              "event_time": datetime(2026, 11, 29, tzinfo=UTC)}
    assert make_event(type="impression", propensity=0.5, snapshot_id=7, **fields).snapshot_id == 7
    with pytest.raises(ValidationError, match="snapshot_id is only for impressions"):
        make_event(type="click", snapshot_id=7, **fields)
    with pytest.raises(ValidationError, match="snapshot_id"):
        make_event(type="impression", propensity=0.5, snapshot_id=0, **fields)


def _setup(url: str, campaigns: int) -> tuple[sessionmaker[Session], list[int]]:
    sessions = session_factory(make_engine(url))
    with transaction(sessions) as session:
        cids = []
        for i in range(campaigns):
            c = create_campaign(
                session, Brief(name=f"c{i}", product="shoes", brand="Acme", audience="runners")
            )
            add_variants(session, c.id, ["Run faster", "Run further", "Run lighter"])
            cids.append(c.id)
    return sessions, cids


def _simulate(
    sessions: sessionmaker[Session],
    settings: Settings,
    cids: list[int],
    rounds: int,
    per_round: int,
    seed: int,
) -> dict[int, Counter[tuple[int, int]]]:
    """Serve ``per_round`` impressions per campaign between posterior refreshes through the
    real allocator; clicks update ``arm_stats``. Returns (snapshot, variant) counts."""
    rng = np.random.default_rng(seed)
    allocator = Allocator(sessions, settings, np.random.default_rng(seed + 1))
    served: dict[int, Counter[tuple[int, int]]] = {cid: Counter() for cid in cids}
    with sessions() as session:
        ctr_of = {
            vid: TRUE_CTR[i % 3]
            for i, vid in enumerate(session.scalars(select(ArmStats.variant_id).order_by(
                ArmStats.variant_id)))
        }
    for _ in range(rounds):
        assert allocator.refresh()
        totals: Counter[tuple[int, str]] = Counter()
        for cid in cids:
            for _ in range(per_round):
                a = allocator.allocate(cid)
                assert a.snapshot_id is not None
                served[cid][(a.snapshot_id, a.variant_id)] += 1
                totals[(a.variant_id, "n")] += 1
                totals[(a.variant_id, "c")] += int(rng.random() < ctr_of[a.variant_id])
        with transaction(sessions) as session:
            for vid in {v for v, _ in totals}:
                session.execute(
                    update(ArmStats).where(ArmStats.variant_id == vid).values(
                        impressions=ArmStats.impressions + totals[(vid, "n")],
                        clicks=ArmStats.clicks + totals[(vid, "c")],
                    )
                )
    return served


def _snapshots(sessions: sessionmaker[Session]) -> dict[int, tuple[list[int], list[float]]]:
    with sessions() as session:
        return {
            s.id: (s.variant_ids, s.probabilities)
            for s in session.scalars(select(AllocationSnapshot))
        }


def test_healthy_traffic_through_the_allocator_alarms_at_most_as_the_threshold_promises(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = Settings(var_dir=tmp_path, database_url=sqlite_url, propensity_samples=500)
    sessions, cids = _setup(sqlite_url, SEEDS)  # one independent campaign per seed
    served = _simulate(sessions, settings, cids, rounds=8, per_round=250, seed=13)
    snapshots = _snapshots(sessions)
    results = []
    for cid in cids:
        arms = expected_counts(snapshots, served[cid])
        assert sum(a.observed for a in arms) == 8 * 250
        assert sum(a.expected for a in arms) == pytest.approx(8 * 250)
        results.append(srm_test([a.observed for a in arms], [a.expected for a in arms]))
    ready = sum(r.ready for r in results)
    alarms = sum(r.flagged for r in results)
    print(f"SRM false alarms: {alarms}/{ready} healthy campaigns ({alarms / ready:.4f}); "
          f"threshold promises {SRM_P_THRESHOLD}")
    assert ready >= 0.9 * SEEDS
    # P(Binomial(200, 0.001) > 3) < 6e-5: more alarms would mean the test is miscalibrated
    assert alarms <= 3
    # and the p-values of healthy traffic are spread out, not piled up near 0
    assert np.median([r.p_value for r in results if r.ready]) > 0.2


def _store_impressions(
    sessions: sessionmaker[Session], cid: int, served: Counter[tuple[int, int]]
) -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    rows = [
        {"event_id": f"{cid}-{sid}-{vid}-{i}", "type": "impression",
         "impression_id": f"{cid}-{sid}-{vid}-{i}", "campaign_id": cid, "variant_id": vid,
         "propensity": 0.5, "event_time": now, "snapshot_id": sid}
        for (sid, vid), n in served.items() for i in range(n)
    ]
    with transaction(sessions) as session:
        session.execute(sa.insert(Event), rows)


def test_a_logging_fault_dropping_a_tenth_of_one_arm_is_flagged(
    tmp_path: Path, sqlite_url: str
) -> None:
    # An arm served (almost) alone in a snapshot cannot show its losses: the snapshot's
    # total shrinks with it. Exploration keeps every arm at a sixth of the traffic or more.
    settings = Settings(
        var_dir=tmp_path, database_url=sqlite_url, propensity_samples=500, min_exploration=0.5
    )
    sessions, (healthy, faulty) = _setup(sqlite_url, 2)
    served = _simulate(sessions, settings, [healthy, faulty], rounds=8, per_round=3000, seed=5)
    rng = np.random.default_rng(0)
    per_arm: Counter[int] = Counter()
    for (_, vid), n in served[faulty].items():
        per_arm[vid] += n
    lossy = min(per_arm, key=per_arm.__getitem__)
    logged = Counter({
        key: int(rng.binomial(n, 0.9)) if key[1] == lossy else n
        for key, n in served[faulty].items()
    })
    _store_impressions(sessions, healthy, served[healthy])
    _store_impressions(sessions, faulty, logged)

    with sessions() as session:
        ok, broken = campaign_srm(session, healthy), campaign_srm(session, faulty)
        view = session.execute(
            sa.text("SELECT variant_id, observed, expected FROM campaign_srm "
                    "WHERE campaign_id = :c ORDER BY variant_id"), {"c": faulty}
        ).all()
    print(f"healthy p = {ok.p_value:.3g}; 10% of variant {lossy} dropped: p = {broken.p_value:.3g}")
    assert ok.ready and not ok.flagged
    assert broken.ready and broken.flagged
    assert sum(a.observed for a in broken.arms) == sum(logged.values())
    # the analyst view computes the same observed and expected counts
    assert [(v, o) for v, o, _ in view] == [(a.variant_id, a.observed) for a in broken.arms]
    for (_, _, e), arm in zip(view, broken.arms, strict=True):
        assert float(e) == pytest.approx(arm.expected)
