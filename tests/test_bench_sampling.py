"""bench/sampling.py --quick compares the two sampling paths and ends with its JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_sampling_quick_reports_both_paths() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/sampling.py", "--quick", "--torch-threads", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    assert out["bench"] == "sampling" and out["n"] == 4 and out["samples"] == 4
    assert out["plain_s"] > 0 and out["cached_s"] > 0 and out["speedup"] > 0
    assert out["prompt_tokens"] > out["new_tokens"] == 12
    # the same seeds: a cache copied to the wrong rows or positions writes other texts
    assert out["same_texts"] >= out["samples"] // 2
    assert "cache copied" in proc.stdout, "the table comes before the JSON line"
