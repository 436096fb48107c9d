"""The gate benchmark runs (``--quick``) and its figures agree with each other and the rule."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bench_run import ROOT, run_bench

from adgen.settings import Settings


def test_gate_quick() -> None:
    out = run_bench("gate.py", "--quick", timeout_s=600).result
    assert out["bench"] == "gate" and out["trials"] == 16
    assert out["settings"]["gate_every"] == 8333  # 300 s of a 3,600 s round of 100,000
    tol = Settings().gate_loss_tolerance
    runs = [(r["floor"], r["control_floor"], r["tolerance"]) for r in out["results"]]
    assert runs == [(0.05, True, 0.0), (0.05, True, tol), (0.05, False, 0.0), (0.05, False, tol)]
    for r in out["results"]:
        assert r["decisions"] + r["undecided"] == r["trials"] == 16
        assert 0 <= r["wrong_beyond_5pct"] <= r["wrong"] <= r["decisions"]
        assert r["regret"] >= 0.05 * r["wrong_beyond_5pct"]
        assert (r["regret"] == 0) == (r["wrong"] == 0)
        assert 0.0 <= r["decided_within_a_round"] <= r["decisions"] / r["trials"]
        rates = r["promote_rate_by_true_lift"]
        assert list(rates) == [
            "< -15%", "-15% to -5%", "-5% to +0%", "+0% to +5%", "+5% to +15%", ">= +15%"
        ]
    strict, production = out["results"][:2]
    # fed as the allocator feeds it, the production gate neither promotes texts 15% worse
    # nor drops texts 15% better
    rates = production["promote_rate_by_true_lift"]
    assert rates["< -15%"] in (0.0, None) and rates[">= +15%"] in (1.0, None)
    # settling near ties by expected loss decides sooner, so the candidate costs less
    assert production["decided_within_a_round"] > strict["decided_within_a_round"]
    assert production["mean_cost_clicks"] < strict["mean_cost_clicks"]


@pytest.mark.parametrize(
    ("tolerances", "message"),
    [("0,x", "numbers separated by commas"), ("0,1.5", "must each be in [0, 1)")],
)
def test_gate_refuses_a_bad_tolerance_before_running(tolerances: str, message: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gate.py"), "--tolerances", tolerances],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and message in proc.stderr and proc.stdout == ""


def test_gate_refuses_a_side_without_texts_before_running() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gate.py"), "--new-texts", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "--new-texts must be at least 1" in proc.stderr
    assert proc.stdout == ""
