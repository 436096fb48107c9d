"""bench/closed_loop.py runs (--quick: one seed, both arms) and ends with its JSON line; a
recorded seed is read back, not run again."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from unittest.mock import patch

import pytest
from bench_run import run_bench
from closed_loop import (  # bench/
    Arm,
    decision_record,
    group_figures,
    protocol_of,
    record_seed,
    recorded_seeds,
    summary,
    text_spread,
)

from adgen.audience import AUDIENCES_DIR, load_audience
from adgen.db.models import GateDecision
from adgen.settings import Settings


def test_closed_loop_quick_on_an_unseen_audience_file(tmp_path: Path) -> None:
    audience = tmp_path / "mine.json"
    audience.write_text((AUDIENCES_DIR / "curious.json").read_text())
    record = tmp_path / "seeds.jsonl"
    args = ("--quick", "--seed", "5", "--torch-threads", "1", "--audience", str(audience),
            "--record", str(record))
    run = run_bench("closed_loop.py", *args, timeout_s=900)
    assert "seed 5, no retraining, round 1" in run.stdout, "the no-retraining arm ran"
    out = run.result
    assert out["bench"] == "closed_loop" and out["audience"] == "mine" and out["seeds"] == [5]
    assert out["rounds"] == 1
    for key in ("lift", "no_retrain_lift", "rm_only_lift", "unseen_brief_lift"):
        assert out[key] is None or out[key] > -1, key
    assert out["lift_ci"] is None, "no interval from one seed"
    assert out["claims"] == {
        "last_round_beats_no_retraining": None,
        "final_beats_rm_selection_alone": None,
    }, "one seed claims nothing"
    realized = out["realized_ctr_by_round"]
    assert len(realized["training"]) == len(realized["no_retraining"]) == 1
    assert all(0 < x < 1 for x in realized["training"] + realized["no_retraining"])
    expected = out["expected_ctr_by_round"]
    assert len(expected["training"]) == len(expected["no_retraining"]) == 1
    assert all(0 < x < 1 for x in expected["training"] + expected["no_retraining"])
    assert out["last_round_expected_lift"] == pytest.approx(
        expected["training"][0] / expected["no_retraining"][0] - 1
    )
    versions = out["acceptance_by_version"]
    assert versions and all(0 <= v["acceptance"] <= 1 and v["seed"] == 5 for v in versions)
    assert sum(v["final"] for v in versions) == 1
    gate = out["gate_errors"]
    assert gate["decisions"] == 0, "one round: no candidate reaches the gate"
    assert gate["wrong_promotions"] == gate["wrong_rollbacks"] == 0
    phases = out["seconds_by_phase"]
    for phase in ("setup", "traffic", "ingest", "reward_model", "rollout", "evaluation"):
        assert phases[phase] >= 0, phase
    assert phases["evaluation"] > 0 and phases["traffic"] > 0
    assert out["seconds"] == pytest.approx(sum(phases.values()), abs=0.5)

    again = run_bench("closed_loop.py", *args, timeout_s=300)
    assert "seeds [5] read back" in again.stdout and "round 1" not in again.stdout
    assert again.result == out


def _arm(ctr: float) -> Arm:
    return Arm([ctr], {"base_true_ctr": 0.03}, seconds={"setup": 1.0})


def test_a_record_is_reused_only_under_its_own_protocol(tmp_path: Path) -> None:
    class Args:
        rounds, impressions, samples, train_briefs, heldout, train_steps, quick = (
            5, 100_000, 48, 6, 2, 20, False
        )
        torch_threads = 1

    audience = load_audience(None)
    plain = {k: v for k, v in os.environ.items() if not k.startswith("ADGEN_")}
    with patch.dict(os.environ, plain, clear=True):
        protocol = protocol_of(Args(), audience)  # type: ignore[arg-type]
    path = tmp_path / "seeds.jsonl"
    assert recorded_seeds(path, protocol) == {}, "no file: nothing recorded"
    record_seed(path, protocol, 0, (_arm(0.04), _arm(0.03)))
    record_seed(path, protocol, 0, (_arm(0.05), _arm(0.03)))  # a rerun: the last one wins
    record_seed(path, protocol | {"rounds": 2}, 1, (_arm(0.9), _arm(0.9)))
    got = recorded_seeds(path, protocol)
    assert list(got) == [0] and got[0][0].realized_ctr == [0.05]
    code = json.loads(path.read_text().splitlines()[0])["code"]
    assert code is None or re.fullmatch(r"[\w.-]+", code), code
    assert got[0][1] == _arm(0.03)

    # A seed run with a setting changed in the environment is another protocol; where the
    # loop runs is not.
    env = plain | {"ADGEN_CANDIDATE_TRAFFIC_FLOOR": "0.2", "ADGEN_CACHE_DIR": str(tmp_path)}
    with patch.dict(os.environ, env, clear=True):
        floored = protocol_of(Args(), audience, Settings(var_dir=tmp_path))  # type: ignore[arg-type]
    assert floored == protocol | {"settings": {"candidate_traffic_floor": 0.2}}
    record_seed(path, floored, 2, (_arm(0.7), _arm(0.03)))
    assert list(recorded_seeds(path, protocol)) == [0]
    assert list(recorded_seeds(path, floored)) == [2]

    with path.open("a") as f:
        f.write("{not json\n")
    with pytest.raises(SystemExit, match=r"seeds.jsonl:5: not a closed-loop seed record"):
        recorded_seeds(path, protocol)


def _seed(last_round: tuple[float, float], served: float, rm_only: float) -> tuple[Arm, Arm]:
    measured = {
        "base_true_ctr": 0.03, "base_acceptance": 0.5, "final_true_ctr": served,
        "final_served_true_ctr": served, "final_acceptance": 0.5, "rm_only_true_ctr": rm_only,
        "unseen_base_true_ctr": 0.03, "unseen_final_true_ctr": served,
    }
    trained = Arm([0.03, last_round[0]], measured)
    fixed = Arm([0.03, last_round[1]], measured | {"final_served_true_ctr": rm_only})
    return trained, fixed


def test_a_claim_holds_only_when_its_interval_clears_zero() -> None:
    steady = [_seed((0.040, 0.030), 0.045, 0.035), _seed((0.041, 0.030), 0.046, 0.035),
              _seed((0.039, 0.030), 0.044, 0.035)]
    out = summary([0, 1, 2], steady)
    assert out["last_round_realized_lift"] == pytest.approx(1 / 3)
    assert out["claims"] == {
        "last_round_beats_no_retraining": True, "final_beats_rm_selection_alone": True
    }
    noisy = [_seed((0.040, 0.030), 0.045, 0.035), _seed((0.025, 0.030), 0.030, 0.035),
             _seed((0.033, 0.030), 0.036, 0.035)]  # better on average, not reliably
    out = summary([0, 1, 2], noisy)
    assert out["last_round_realized_lift"] > 0 and out["lift_over_rm_only"] > 0
    assert out["claims"] == {
        "last_round_beats_no_retraining": False, "final_beats_rm_selection_alone": False
    }


def test_group_figures_average_shares_over_seeds_and_skip_older_records() -> None:
    one = Arm([0.03], {}, groups=[{"proven": [900, 0.04], "candidate": [100, 0.03]}])
    two = Arm([0.03], {}, groups=[{"proven": [1000, 0.05]}])
    figures = group_figures([one, two])
    assert figures[0]["candidate"] == {"share": pytest.approx(0.05), "expected_ctr": 0.03}
    assert figures[0]["proven"] == {"share": pytest.approx(0.95), "expected_ctr": 0.045}
    assert "fresh" not in figures[0], "a group no seed served is left out"
    assert group_figures([one, Arm([0.03], {})]) == [], "an older record has no groups"


def test_a_decision_is_recorded_with_its_reason_and_judged_by_the_truth() -> None:
    row = GateDecision(
        candidate_version_id=7, decision="rollback", candidate_impressions=1_749,
        prob_better=0.04, details={"reason": "P(better) 0.0400 <= 0.05"},
    )
    wrong = decision_record(row, cand_ctr=0.0306, inc_ctr=0.0276)
    assert wrong == {
        "candidate": 7, "decision": "rollback", "impressions": 1_749, "prob_better": 0.04,
        "reason": "P(better) 0.0400 <= 0.05", "candidate_true_ctr": 0.0306,
        "incumbent_true_ctr": 0.0276, "wrong": True,
    }
    assert decision_record(row, cand_ctr=0.0276, inc_ctr=0.0306)["wrong"] is False
    row.decision, row.details = "promote", {}  # recorded without a reason
    promoted = decision_record(row, cand_ctr=0.0361, inc_ctr=0.0379)
    assert promoted["wrong"] is True and promoted["reason"] is None


def test_the_text_spread_is_pooled_within_each_side_and_campaign() -> None:
    # log true CTRs 0 and log 4 in one campaign (deviations -/+ log 2), a lone text elsewhere
    # and a side of two equal texts: 2 (log 2)^2 over 1 + 0 + 1 degrees of freedom
    cand = {1: [0.01, 0.04], 2: [0.03]}
    inc = {1: [0.02, 0.02]}
    assert text_spread(cand, inc) == pytest.approx(math.log(2))
    # only the texts about their own side's mean count, not how far apart the sides are
    apart = text_spread({1: [0.01, 0.04]}, {1: [0.2, 0.8]})
    assert apart == pytest.approx(text_spread({1: [0.01, 0.04]}, {1: [0.01, 0.04]}))
    assert apart == pytest.approx(math.log(2) * math.sqrt(2))
    assert text_spread({1: [0.03]}, {1: [0.02], 2: []}) is None
