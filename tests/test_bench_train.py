"""bench/train.py --quick runs and reports as docs/benchmarks.md says (no speed is asserted)."""

from __future__ import annotations

import pytest
from bench_run import run_bench

pytestmark = pytest.mark.slow  # loads the real model and trains
KEYS = ("dpo_step_s", "kto_step_s", "rl_step_s", "cycle_s", "peak_rss_mb", "adapter_mb")


def test_bench_train_quick_prints_a_table_then_one_json_line() -> None:
    # English only: the Chinese base model's DPO step is a large download and slow
    run = run_bench("train.py", "--quick", "--seed", "1", "--locales", "en", timeout_s=600)
    result = run.result
    assert result["bench"] == "train" and result["quick"] is True and result["seed"] == 1
    assert all(result[k] > 0 for k in KEYS), result
    # scoring only the completion tokens changes the speed, not the loss
    assert result["dpo_all_positions_step_s"] > 0 and result["compact_head_same_loss"] is True
    # so does running each pair's prompt once
    assert result["dpo_prompt_twice_step_s"] > 0 and result["shared_prompt_same_loss"] is True
    # 7 winners x 7 losers, every one a clear preference; one KTO example per variant
    assert (result["pairs"], result["kto_examples"], result["steps"]) == (49, 14, 2)
    assert result["adapter_mb"] < 12  # LoRA r=8 on every linear layer: about 9.8 MB
    assert result["cycle_heldout_margin_before"] is not None
    assert "training speed" in run.stdout and "one full training cycle" in run.stdout
