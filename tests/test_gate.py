"""The promotion gate, promotion and rollback on seeded live evidence (real PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import numpy as np
import pytest
import seed_evidence as seed
import sqlalchemy as sa
from api_support import ADMIN
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from adgen.allocator import Allocator
from adgen.cli.main import app as cli
from adgen.db.models import GateDecision, ModelVersion, Variant
from adgen.errors import ConflictError, NotFoundError
from adgen.model.comparison import Comparison, compare
from adgen.model.versions import promote, rollback
from adgen.settings import Settings, get_settings
from adgen.training.gate import decide, evaluate

BASE = "smollm2-135m-instruct"


def _lineage(
    sessions: sessionmaker[Session],
    incumbent: tuple[int, int] | Sequence[tuple[int, int]],
    candidate: tuple[int, int] | Sequence[tuple[int, int]],
) -> tuple[int, int, int, list[int], list[int]]:
    """Campaign, active base version v_a, candidate v_c, and their variants with evidence:
    (impressions, clicks) per side split over two variants, or one pair per variant."""
    with sessions.begin() as session:
        cid = seed.campaign(session)
        base = seed.version(session, BASE, "active")
        cand = seed.version(session, BASE, "candidate", parent_id=base.id)
        ids = {}
        for name, version, evidence in (("base", base, incumbent), ("cand", cand, candidate)):
            per_arm = _per_arm(evidence)
            texts = [(f"Acme {name} headline {i}", 0, 0) for i in range(len(per_arm))]
            ids[name] = seed.arms(session, cid, texts, version_id=version.id)
            for vid, (n, k) in zip(ids[name], per_arm, strict=True):
                seed.log(session, cid, vid, n, k)
    return cid, base.id, cand.id, ids["base"], ids["cand"]


def _per_arm(evidence: tuple[int, int] | Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    if isinstance(evidence[0], int):
        n, k = cast(tuple[int, int], evidence)
        return [(n - n // 2, k - k // 2), (n // 2, k // 2)]
    return list(cast(Sequence[tuple[int, int]], evidence))


def _evaluated(session: Session, candidate_id: int, settings: Settings) -> GateDecision:
    """The gate's decision on ``candidate_id``, recorded (a "continue" included)."""
    decision = evaluate(session, candidate_id, settings)
    assert decision is not None
    return decision


def _decisions(session: Session) -> list[GateDecision]:
    return list(session.scalars(sa.select(GateDecision).order_by(GateDecision.id)))


def test_gate_promotes_texts_that_are_better_on_average_however_traffic_was_split(
    pg_sessions: sessionmaker[Session],
) -> None:
    # The bandit gave the incumbent's one strong text most of the traffic; its other texts
    # are poor. Pooled, the incumbent looks better (5.0% against 4.0%); its average text is
    # not (about 2.4% against 4.0%), and that is what the gate judges.
    _, base_id, cand_id, base_variants, _ = _lineage(
        pg_sessions,
        incumbent=[(6000, 300), (400, 4), (400, 3)],
        candidate=[(900, 36), (900, 36)],
    )
    settings = Settings()
    with pg_sessions.begin() as session:
        decision = _evaluated(session, cand_id, settings)
    assert decision.decision == "promote" and decision.decided_by == "gate"
    assert (decision.candidate_impressions, decision.candidate_successes) == (1800, 72)
    assert (decision.incumbent_impressions, decision.incumbent_successes) == (6800, 307)
    assert decision.prob_better is not None and decision.prob_better >= 0.95
    assert decision.incumbent_version_id == base_id
    details = decision.details
    assert details["basis"] == "incumbent" and "P(better)" in details["reason"]
    assert (details["candidate_variants"], details["incumbent_variants"]) == (2, 3)
    assert details["candidate_mean"] > details["incumbent_mean"]
    with pg_sessions() as session:
        assert session.get_one(ModelVersion, cand_id).status == "active"
        assert session.get_one(ModelVersion, cand_id).promoted_at is not None
        assert session.get_one(ModelVersion, base_id).status == "retired"
        statuses = session.scalars(sa.select(Variant.status).where(Variant.id.in_(base_variants)))
        assert set(statuses) == {"active"}  # the retired version's variants keep competing


def test_gate_compares_a_candidate_with_what_the_incumbent_wrote_beside_it(
    pg_sessions: sessionmaker[Session],
) -> None:
    # The incumbent's two old texts are poor (1%); the two it wrote in the candidate's cycle
    # (rollout_of the candidate) are strong (5%). The candidate's (3.5%) beat the incumbent's
    # average text (3%) but not what it writes now, and that is what the gate judges.
    _, base_id, cand_id, base_variants, _ = _lineage(
        pg_sessions,
        incumbent=[(3000, 30), (3000, 30), (3000, 150), (3000, 150)],
        candidate=[(3000, 105), (3000, 105)],
    )
    with pg_sessions.begin() as session:
        everything = compare(session, session.get_one(ModelVersion, cand_id), seed_active(session))
        for vid in base_variants[2:]:
            session.get_one(Variant, vid).rollout_of = cand_id
    assert everything.basis == "incumbent" and everything.prob_better > 0.95
    with pg_sessions.begin() as session:
        decision = _evaluated(session, cand_id, Settings())
    assert decision.decision == "rollback"
    assert decision.details["basis"] == "incumbent_rollout"
    assert decision.details["incumbent_variants"] == 2
    assert decision.incumbent_impressions == 6000
    with pg_sessions() as session:
        assert session.get_one(ModelVersion, cand_id).status == "rolled_back"
        assert session.get_one(ModelVersion, base_id).status == "active"


def seed_active(session: Session) -> ModelVersion:
    """The lineage's active version (the incumbent)."""
    return session.scalars(sa.select(ModelVersion).where(ModelVersion.status == "active")).one()


def test_a_little_served_text_counts_for_about_the_typical_rate() -> None:
    since = datetime.now(UTC)
    lucky = Comparison([1], [(1, 3)], [(40, 1000), (40, 1000)], "incumbent", since)
    # 1 click in 3 impressions is not a 33% text: shrunk towards the typical rate, unsure
    assert lucky.means()[0] < 0.06 and 0.05 < lucky.prob_better < 0.95
    same = Comparison([1], [(40, 1000)], [(40, 1000)], "incumbent", since)
    assert same.prob_better == pytest.approx(0.5, abs=0.02)
    assert Comparison([1], [], [(40, 1000)], "incumbent", since).prob_better == 0.5


def test_gate_rolls_back_a_loser_and_continues_while_unsure(
    pg_sessions: sessionmaker[Session],
) -> None:
    settings = Settings()
    _, base_id, loser, _, loser_variants = _lineage(
        pg_sessions, incumbent=(2000, 60), candidate=(500, 2)
    )
    with pg_sessions.begin() as session:
        decision = _evaluated(session, loser, settings)
    assert decision.decision == "rollback" and decision.prob_better is not None
    assert decision.prob_better <= 0.05
    assert decision.details["paused_variants"] == 2
    with pg_sessions() as session:
        assert session.get_one(ModelVersion, loser).status == "rolled_back"
        assert session.get_one(ModelVersion, base_id).status == "active"
        statuses = session.scalars(sa.select(Variant.status).where(Variant.id.in_(loser_variants)))
        assert set(statuses) == {"paused"}

    _, _, unsure, _, _ = _lineage(pg_sessions, incumbent=(60, 2), candidate=(50, 2))
    with pg_sessions.begin() as session:
        decision = _evaluated(session, unsure, settings)
    assert decision.decision == "continue"
    assert (decision.candidate_impressions, decision.incumbent_impressions) == (50, 60)
    assert 0.05 < (decision.prob_better or 0) < 0.95
    with pg_sessions() as session:
        assert session.get_one(ModelVersion, unsure).status == "candidate"
        assert [d.decision for d in _decisions(session)] == ["rollback", "continue"]
        with pytest.raises(ConflictError, match="not a candidate"):
            evaluate(session, loser, settings)


def test_gate_rule_by_probability_expected_loss_and_sample_size() -> None:
    settings = Settings(gate_max_impressions=400, gate_loss_tolerance=0.02)
    unsure = (0.10, 0.10)  # a wrong choice either way would cost about 10% of the rate
    assert decide(0.96, unsure, 10, settings).decision == "promote"
    assert decide(0.04, unsure, 10, settings).decision == "rollback"
    assert decide(0.6, unsure, 399, settings).decision == "continue"
    # a near tie, well measured: settled, keeping the incumbent when both choices are cheap
    assert decide(0.55, (0.015, 0.019), 300, settings).decision == "rollback"
    assert decide(0.7, (0.015, 0.03), 300, settings).decision == "promote"
    assert decide(0.3, (0.03, 0.015), 300, settings).decision == "rollback"
    # not shown better by the budget: rolled back, even when ahead on the posterior means
    verdict = decide(0.8, unsure, 400, settings)
    assert verdict.decision == "rollback" and "the incumbent stays" in verdict.reason
    # tolerance 0: P(better) and the budget alone
    strict = settings.model_copy(update={"gate_loss_tolerance": 0.0})
    assert decide(0.55, (0.015, 0.019), 300, strict).decision == "continue"


def test_a_squeezed_budget_settles_by_the_smaller_expected_loss() -> None:
    """With ``lower_loss`` (the demo's one-round budget) a candidate ahead on the posterior
    means is promoted at the budget and one behind is rolled back; before the budget, and
    where P(better) or the tolerance decides, the rule is the production one."""
    settings = Settings(
        gate_max_impressions=400, gate_loss_tolerance=0.01, gate_budget_rule="lower_loss"
    )
    ahead = decide(0.74, (0.04, 0.12), 400, settings)
    assert ahead.decision == "promote" and "promote risks less" in ahead.reason
    assert "4.00%" in ahead.reason and "12.00%" in ahead.reason
    assert decide(0.35, (0.11, 0.05), 400, settings).decision == "rollback"
    assert decide(0.74, (0.04, 0.12), 399, settings).decision == "continue"
    assert decide(0.97, (0.001, 0.3), 400, settings).decision == "promote"
    assert decide(0.6, (0.02, 0.005), 400, settings).decision == "rollback"
    # an exact tie keeps the incumbent
    assert decide(0.5, (0.05, 0.05), 400, settings).decision == "rollback"
    with pytest.raises(ValueError, match="gate_budget_rule"):
        Settings(gate_budget_rule="posterior_means")


def test_expected_loss_shrinks_on_a_near_tie_as_evidence_grows() -> None:
    since = datetime.now(UTC)

    def loss(cand: int, inc: int, n: int) -> tuple[float, float]:
        arms = 4
        return Comparison(
            [1], [(cand, n)] * arms, [(inc, n)] * arms, "incumbent_rollout", since
        ).expected_loss

    few, many = loss(40, 40, 1000), loss(4000, 4000, 100_000)
    assert min(few) > 0.02 and max(many) < 0.01  # a tie, measured 100x better
    trailing = loss(4000, 4100, 100_000)  # surely 2.4% worse: promoting costs about that
    assert trailing[0] == pytest.approx(0.0244, abs=0.002) and trailing[1] < 0.001
    ahead = loss(60, 40, 2000)  # 3.0% against 2.0%
    assert ahead[0] < 0.01 < 0.2 < ahead[1]
    assert Comparison([1], [], [(40, 1000)], "incumbent", since).expected_loss == (1.0, 1.0)


def test_gate_settles_a_well_measured_near_tie_and_says_why(
    pg_sessions: sessionmaker[Session],
) -> None:
    # 3.00% against 3.01%: P(better) stays near one half, but either choice now costs
    # under 1% of the rate, so the incumbent stays
    _, base_id, cand_id, _, _ = _lineage(
        pg_sessions, incumbent=(300_000, 9000), candidate=(300_000, 9030)
    )
    settings = Settings()
    assert settings.gate_loss_tolerance == 0.01
    with pg_sessions.begin() as session:
        decision = _evaluated(session, cand_id, settings)
    assert 0.05 < (decision.prob_better or 0) < 0.95
    assert decision.decision == "rollback"
    assert decision.details["reason"].startswith("expected loss of rolling back")
    assert decision.details["expected_loss_of_promoting"] <= 0.01
    assert decision.details["expected_loss_of_rolling_back"] <= 0.01
    with pg_sessions() as session:
        assert session.get_one(ModelVersion, base_id).status == "active"


def test_manual_rollback_pauses_the_variants_the_allocator_stops_serving_them(
    pg_sessions: sessionmaker[Session],
) -> None:
    with pg_sessions.begin() as session:
        cid = seed.campaign(session)
        base = seed.version(session, BASE, "retired")
        seed.arms(session, cid, [("Acme running shoes", 1000, 20)], version_id=base.id)
        v2 = seed.version(session, BASE, "active", parent_id=base.id)
        v2_ids = seed.arms(
            session,
            cid,
            [("Save 30% on Acme", 1000, 90), ("Acme: order now", 1000, 80)],
            version_id=v2.id,
        )
    allocator = Allocator(pg_sessions, Settings(), np.random.default_rng(0))
    assert allocator.refresh()
    served = Counter(allocator.allocate(cid).variant_id for _ in range(200))
    assert sum(served[v] for v in v2_ids) > 100  # the winners get most traffic

    with pg_sessions.begin() as session:
        decision = rollback(session, v2.id)
    assert (decision.decision, decision.decided_by) == ("rollback", "operator")
    assert decision.incumbent_version_id == base.id
    assert decision.details["paused_variants"] == 2
    with pg_sessions() as session:
        assert session.get_one(ModelVersion, v2.id).status == "rolled_back"
        assert session.get_one(ModelVersion, base.id).status == "active"  # parent is back
        statuses = session.scalars(sa.select(Variant.status).where(Variant.id.in_(v2_ids)))
        assert set(statuses) == {"paused"}

    assert allocator.refresh()
    served = Counter(allocator.allocate(cid).variant_id for _ in range(300))
    assert not set(served) & set(v2_ids) and sum(served.values()) == 300

    with pg_sessions.begin() as session:
        with pytest.raises(ConflictError, match="already rolled back"):
            rollback(session, v2.id)
        with pytest.raises(ConflictError, match="only a candidate or a retired"):
            promote(session, v2.id)
        with pytest.raises(ConflictError, match="no ancestor"):
            rollback(session, base.id)
        with pytest.raises(NotFoundError):
            promote(session, 999_999)


def test_models_api_lists_promotes_and_rolls_back(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    _, base_id, cand_id, _, cand_variants = _lineage(
        pg_sessions, incumbent=(100, 2), candidate=(100, 3)
    )
    assert client.post(f"/v1/models/{cand_id}/promote").status_code == 401
    r = client.post(f"/v1/models/{cand_id}/promote", headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] == "promote" and body["decided_by"] == "operator"
    assert (body["candidate_impressions"], body["candidate_successes"]) == (100, 3)

    r = client.post(f"/v1/models/{cand_id}/rollback", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["incumbent_version_id"] == base_id
    assert client.post(f"/v1/models/{cand_id}/rollback", headers=ADMIN).status_code == 409
    assert client.post("/v1/models/424242/promote", headers=ADMIN).status_code == 404

    listed = {m["id"]: m for m in client.get("/v1/models").json()}
    assert listed[cand_id]["status"] == "rolled_back" and listed[base_id]["status"] == "active"
    assert listed[cand_id]["variants"] == len(cand_variants)
    assert listed[cand_id]["active_variants"] == 0
    assert listed[cand_id]["impressions"] == 100 and listed[cand_id]["rate"] == pytest.approx(0.03)


def test_models_cli_lists_promotes_and_rolls_back(
    pg_url: str, pg_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base_id, cand_id, _, _ = _lineage(pg_sessions, incumbent=(100, 2), candidate=(100, 3))
    monkeypatch.setenv("ADGEN_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(cli, ["models", "promote", str(cand_id)])
        assert result.exit_code == 0, result.output
        assert f"v{cand_id} promoted" in result.output
        result = runner.invoke(cli, ["models", "rollback", str(cand_id)])
        assert result.exit_code == 0, result.output
        assert "2 variants paused" in result.output and f"active now: v{base_id}" in result.output
        result = runner.invoke(cli, ["models", "list"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "rolled_back" in result.output and "retired" not in result.output
    finally:
        get_settings.cache_clear()
    with pg_sessions() as session:
        bys = [(d.decision, d.decided_by) for d in _decisions(session)]
    assert bys == [("promote", "operator"), ("rollback", "operator")]


def test_operator_decisions_are_recorded_even_without_live_evidence(
    pg_sessions: sessionmaker[Session],
) -> None:
    with pg_sessions.begin() as session:
        base = seed.version(session, BASE, "active")
        cand = seed.version(session, BASE, "candidate", parent_id=base.id)
    with pg_sessions.begin() as session:
        decision = promote(session, cand.id)
    assert decision.candidate_impressions == 0 and decision.prob_better == pytest.approx(0.5)
    assert decision.details["campaigns"] == []
    assert datetime.fromisoformat(decision.details["since"]) <= datetime.now(UTC)
