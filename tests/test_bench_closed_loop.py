"""bench/closed_loop.py runs (--quick) end to end and ends with its JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from adgen.audience import AUDIENCES_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_closed_loop_quick_on_an_unseen_audience_file(tmp_path: Path) -> None:
    audience = tmp_path / "mine.json"
    audience.write_text((AUDIENCES_DIR / "curious.json").read_text())
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "closed_loop.py"),
            "--quick",
            "--seed",
            "5",
            "--audience",
            str(audience),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) > 1, "tables come before the JSON line"
    out = json.loads(lines[-1])
    assert out["bench"] == "closed_loop" and out["audience"] == "mine" and out["seed"] == 5
    assert out["rounds"] == 1 and len(out["per_round"]) == 1
    assert 0 < out["base_true_ctr"] < 1
    round_one = out["per_round"][0]
    assert round_one["round"] == 1 and 0 <= round_one["served_ctr"] <= 1
    assert out["final_true_ctr"] > 0 and "lift" in out and "rm_only_lift" in out
