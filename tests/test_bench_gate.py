"""The gate benchmark runs (``--quick``) and its figures agree with each other and the rule."""

from __future__ import annotations

from bench_run import run_bench


def test_gate_quick() -> None:
    out = run_bench("gate.py", "--quick", timeout_s=600).result
    assert out["bench"] == "gate" and out["trials"] == 16
    assert out["settings"]["gate_every"] == 8333  # 300 s of a 3,600 s round of 100,000
    runs = [(r["floor"], r["control_floor"]) for r in out["results"]]
    assert runs == [(0.05, True), (0.05, False), (0.2, True), (0.2, False)]
    for r in out["results"]:
        assert r["decisions"] + r["undecided"] == r["trials"] == 16
        assert 0 <= r["wrong_beyond_5pct"] <= r["wrong"] <= r["decisions"]
        assert 0.0 <= r["decided_within_a_round"] <= r["decisions"] / r["trials"]
        rates = r["promote_rate_by_true_lift"]
        assert list(rates) == [
            "< -15%", "-15% to -5%", "-5% to +0%", "+0% to +5%", "+5% to +15%", ">= +15%"
        ]
        if r["control_floor"]:
            # fed as the allocator feeds it, the gate neither promotes texts 15% worse nor
            # drops texts 15% better (without the control floor it did promote one, here)
            assert rates["< -15%"] in (0.0, None) and rates[">= +15%"] in (1.0, None)
    low, _, high, _ = out["results"]
    # a higher floor gives the candidate more traffic, so fewer trials are left undecided
    assert high["undecided"] <= low["undecided"]
