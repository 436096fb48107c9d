"""bench/candidate.py runs (--quick: one seed, the real bundled model, 2 steps) and ends with
its JSON line; its summary averages seeds per steps value."""

from __future__ import annotations

import argparse

import pytest
from bench_run import run_bench
from candidate import summary  # bench/


def test_candidate_quick_trains_and_measures_against_its_base() -> None:
    run = run_bench("candidate.py", "--quick", "--torch-threads", "1", timeout_s=900)
    assert "seed 0, 2 steps: trained in" in run.stdout
    out = run.result
    assert out["bench"] == "candidate" and out["seeds"] == [0] and out["steps"] == [2]
    assert out["trainer"]["trainer"] == "dpo" and out["trainer"]["rm_samples"] == 8
    (seed,) = out["per_seed"]
    assert seed["arms"] >= 2 and seed["pairs_live"] + seed["pairs_reward_model"] > 0
    assert 0 < seed["base"]["acceptance"] <= 1
    trained = seed["by_steps"]["2"]
    assert 0 <= trained["acceptance"] <= 1 and trained["train_loss"] is not None
    assert out["acceptance"]["2"] == trained["acceptance"]
    assert out["policy_lift"]["2"] is None or out["policy_lift"]["2"] > -1
    assert out["policy_lift_ci"]["2"] is None, "no interval from one seed"


def _seed(seed: int, lift: float) -> dict[str, object]:
    trained = {
        "policy_lift": lift,
        "lift_over_rm_only": lift / 2,
        "acceptance": 0.5,
        "train_s": 10.0,
    }
    return {"seed": seed, "base": {"acceptance": 0.4}, "by_steps": {"10": trained}}


def test_summary_gives_mean_and_interval_per_steps_value() -> None:
    args = argparse.Namespace(seeds=[0, 1, 2], steps=[10])
    out = summary(args, [_seed(0, 0.1), _seed(1, 0.2), _seed(2, 0.3)])
    assert out["policy_lift"]["10"] == pytest.approx(0.2)
    assert out["lift_over_rm_only"]["10"] == pytest.approx(0.1)
    low, high = out["policy_lift_ci"]["10"]
    assert low < 0.2 < high and high - 0.2 == pytest.approx(0.2 - low)
    assert out["base_acceptance"] == pytest.approx(0.4)
