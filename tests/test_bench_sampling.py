"""bench/sampling.py --quick compares the two sampling paths and ends with its JSON line."""

from __future__ import annotations

from bench_run import run_bench


def test_bench_sampling_quick_reports_both_paths() -> None:
    run = run_bench("sampling.py", "--quick", "--torch-threads", "1", timeout_s=600)
    out = run.result
    assert out["bench"] == "sampling" and out["n"] == 4 and out["samples"] == 4
    assert out["plain_s"] > 0 and out["cached_s"] > 0 and out["speedup"] > 0
    assert out["prompt_tokens"] > out["new_tokens"] == 12
    # the same seeds: a cache copied to the wrong rows or positions writes other texts
    assert out["same_texts"] >= out["samples"] // 2
    assert "cache copied" in run.stdout, "the table comes before the JSON line"
