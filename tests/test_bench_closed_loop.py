"""bench/closed_loop.py runs (--quick: one seed, both arms) and ends with its JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from adgen.audience import AUDIENCES_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_closed_loop_quick_on_an_unseen_audience_file(tmp_path: Path) -> None:
    audience = tmp_path / "mine.json"
    audience.write_text((AUDIENCES_DIR / "curious.json").read_text())
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "closed_loop.py"),
            "--quick",
            "--seed",
            "5",
            "--torch-threads",
            "1",
            "--audience",
            str(audience),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert "seed 5, no retraining, round 1" in proc.stdout, "the no-retraining arm ran"
    assert len(lines) > 1, "tables come before the JSON line"
    out = json.loads(lines[-1])
    assert out["bench"] == "closed_loop" and out["audience"] == "mine" and out["seeds"] == [5]
    assert out["rounds"] == 1
    for key in ("lift", "no_retrain_lift", "rm_only_lift", "unseen_brief_lift"):
        assert out[key] is None or out[key] > -1, key
    assert out["lift_ci"] is None, "no interval from one seed"
    realized = out["realized_ctr_by_round"]
    assert len(realized["training"]) == len(realized["no_retraining"]) == 1
    assert all(0 < x < 1 for x in realized["training"] + realized["no_retraining"])
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
