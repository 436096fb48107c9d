"""The contextual and off-policy evaluation benchmarks run (``--quick``) and end with their
JSON line (no speeds asserted)."""

from __future__ import annotations

from bench_run import run_bench


def test_ope_obd_quick() -> None:
    out = run_bench("ope_obd.py", "--quick", "--seed", "3", timeout_s=120).result
    assert out["bench"] == "ope_obd" and out["n_rounds"] == 10_000 and out["n_actions"] == 80
    assert set(out["relative_error"]) == {"ipw", "snipw", "dr"}
    # BTS's observed CTR in the vendored sample is 42 clicks in 10,000 rounds
    assert out["ground_truth_ctr"] == 0.0042
    for name, (lo, hi) in out["ci95"].items():
        assert lo <= out["estimates"][name] <= hi
        assert out["relative_error"][name] >= 0


def test_contextual_quick() -> None:
    out = run_bench("contextual.py", "--quick", "--seed", "3", timeout_s=240).result
    assert out["bench"] == "contextual" and out["seeds"] >= 2 and out["horizon"] > 0
    speed = out["speed"]
    assert speed["K"] == 10 and speed["cells"] == 20
    assert speed["contextual_decisions_per_s"] > 0 and speed["plain_decisions_per_s"] > 0
    for label in ("disagreeing", "identical"):
        q = out[label]
        for key in ("contextual_clicks", "plain_clicks", "contextual_regret", "plain_regret"):
            assert q[key] >= 0, (label, key)
    # segments that disagree: per-segment allocation loses fewer clicks than one policy
    assert out["disagreeing"]["contextual_regret"] < out["disagreeing"]["plain_regret"]
    assert out["cost_of_cells"] == -out["identical"]["click_gain"]


def test_ope_sim_quick() -> None:
    out = run_bench("ope_sim.py", "--quick", "--seed", "3", timeout_s=120).result
    assert out["bench"] == "ope_sim" and out["seeds"] >= 2
    assert set(out["relative_error"]) == {"ipw", "snipw", "dr"}
    assert all(e >= 0 for e in out["relative_error"].values())
    assert 0 < out["earned_ctr"] < 1 and 0 < out["true_ctr"] < 1
    assert set(out["with_exploration"]["relative_error"]) == {"ipw", "snipw", "dr"}
