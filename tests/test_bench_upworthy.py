"""The Upworthy benchmarks run (``--quick``) and end with their JSON line (no speeds asserted)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import pytest
from bench_run import run_bench

ROOT = Path(__file__).resolve().parents[1]
UPWORTHY_COLUMNS = ["clickability_test_id", "headline", "impressions", "clicks",
                    "eyecatcher_id", "test_week"]


def _run(script: str, *args: str) -> dict[str, Any]:
    run = run_bench(script, "--quick", "--seed", "3", *args, timeout_s=300)
    assert "Upworthy Research Archive" in run.lines[0] and "CC BY 4.0" in run.lines[0]
    assert len(run.lines) > 2, "a table comes before the JSON line"
    return run.result


def test_reward_upworthy_quick() -> None:
    out = _run("reward_upworthy.py")
    assert out["bench"] == "reward_upworthy" and out["cutoff"] == 201410
    assert out["train_tests"] == out["eval_tests"] == 40
    assert out["pairs"] >= out["sig_pairs"] > 0
    for key in ("pairwise_acc", "sig_pairwise_acc", "baseline_sig_pairwise_acc", "auc"):
        assert 0.0 <= out[key] <= 1.0, key
    assert -1.0 <= out["spearman"] <= 1.0
    assert 0.0 <= out["no_handcrafted_sig_pairwise_acc"] <= 1.0


def test_replay_upworthy_quick() -> None:
    out = _run("replay_upworthy.py")
    assert out["bench"] == "replay_upworthy" and out["tests"] == 30 and out["seeds"] == 4
    # no policy beats always showing the best package, and the uniform split is exact
    assert out["clicks_uniform"] <= out["clicks_best"]
    for key in ("clicks_ts", "clicks_ts_batched"):
        assert out["clicks_uniform"] * 0.8 < out[key] <= out["clicks_best"] + 1e-6, key
    assert 0.0 <= out["best_identified_share"] <= 1.0
    assert out["regret_ts"] >= 0


def test_replay_takes_any_file_with_the_columns(tmp_path: Path) -> None:
    # Two tests: one with a clear winner, one with identical packages.
    rows = [("a", "Winner", 3000, 300, "i1", 201501), ("a", "Loser", 3000, 30, "i1", 201501),
            ("b", "Same", 2000, 40, "i2", 201502), ("b", "Same too", 2000, 40, "i2", 201502)]
    path = tmp_path / "mine.csv.gz"
    with gzip.open(path, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(UPWORTHY_COLUMNS)
        writer.writerows(rows)
    out = _run("replay_upworthy.py", "--data", str(path))
    assert out["data"] == "mine.csv.gz" and out["tests"] == 2
    assert out["clicks_uniform"] == pytest.approx(0.5 * 6000 * (0.1 + 0.01) + 4000 * 0.02)
    assert out["clicks_best"] == pytest.approx(6000 * 0.1 + 4000 * 0.02)
    assert out["gain_ts"] > 0.5  # the clear winner is found fast
    assert out["best_identified_share"] == 1.0
