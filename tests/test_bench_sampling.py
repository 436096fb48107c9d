"""bench/sampling.py --quick compares the two sampling paths and ends with its JSON line."""

from __future__ import annotations

from bench_run import run_bench


def test_bench_sampling_quick_reports_the_three_paths() -> None:
    run = run_bench("sampling.py", "--quick", "--torch-threads", "1", timeout_s=600)
    out = run.result
    assert out["bench"] == "sampling" and out["n"] == 4 and out["samples"] == 4
    assert out["plain_s"] > 0 and out["cached_s"] > 0 and out["settled_s"] > 0
    assert out["speedup"] > 0 and out["stop_speedup"] > 0
    assert out["prompt_tokens"] > out["new_tokens"] == 12
    # the same seeds: a cache copied to the wrong rows or positions writes other texts
    assert out["same_texts"] >= out["samples"] // 2
    # stopping a settled row keeps its candidate (or one too long either way); one in the
    # rare edge the rule does not cover (a "." that a later digit makes a decimal point)
    assert out["same_candidates"] >= out["samples"] - 1
    assert "cache copied" in run.stdout and "settled rows stop" in run.stdout, "table first"
