"""The allocation benchmarks run (``--quick``) and end with their JSON line (no speeds asserted)."""

from __future__ import annotations

from bench_run import run_bench


def test_bandit_regret_quick() -> None:
    out = run_bench("bandit_regret.py", "--quick", "--seed", "3", timeout_s=120).result
    assert out["bench"] == "bandit_regret" and out["seeds"] >= 2 and out["horizon"] > 0
    assert [(r["K"], r["eps"]) for r in out["results"]] == [
        (10, 0.1), (10, 0.02), (100, 0.1), (100, 0.02), (10, 0.01)
    ]
    for r in out["results"]:
        for key in ("ts", "ts_batched", "ucb1", "egreedy", "uniform", "lower_bound"):
            assert r[key] >= 0, (key, r)
        # no policy can do worse than always playing a worst arm
        worst = out["horizon"] * r["eps"]
        assert max(r["ts"], r["ts_batched"], r["ucb1"], r["egreedy"]) <= worst


def test_allocate_quick() -> None:
    out = run_bench("allocate.py", "--quick", "--seed", "3", timeout_s=180).result
    assert out["bench"] == "allocate"
    assert [r["K"] for r in out["results"]] == [10, 100, 1000]
    for r in out["results"]:
        assert r["decisions_per_s"] > 0 and 0 < r["p50_us"] <= r["p99_us"]
        if out["mabwiser"]:
            assert r["ratio_to_mabwiser"] > 0
        else:
            assert r["mabwiser_decisions_per_s"] is None


def test_http_allocate_quick() -> None:
    out = run_bench("http_allocate.py", "--quick", "--seed", "3", timeout_s=240).result
    assert out["bench"] == "http_allocate"
    assert out["requests"] > 0 and out["errors"] == 0
    assert out["rps"] > 0 and out["bare_rps"] > 0
    assert out["ratio_to_bare"] == out["rps"] / out["bare_rps"]
    assert 0 < out["p50_ms"] <= out["p99_ms"]
