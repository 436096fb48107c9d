"""bench/ingest.py runs end to end (--quick) and reports its figures as docs/benchmarks.md asks."""

from __future__ import annotations

from bench_run import run_bench


def test_bench_ingest_quick_reports_one_json_line() -> None:
    run = run_bench("ingest.py", "--quick", "--seed", "3", timeout_s=600)
    report = run.result
    assert report["bench"] == "ingest" and report["events"] == 20_000 and report["seed"] == 3
    for key in ("full_path_eps", "naive_eps", "copy_eps"):
        assert report[key] > 0, key
    assert abs(report["ratio_to_copy"] - report["full_path_eps"] / report["copy_eps"]) < 1e-3
    assert "raw COPY" in run.stdout and "full path" in run.stdout  # the table came first
