"""bench/faults.py finds every scenario, runs the chosen ones and reports one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_discovery_finds_every_scenario_module() -> None:
    import faults  # bench/ is on sys.path (tests/faults/conftest.py)

    found = faults.discover()
    assert {"ingest_kill", "broker_restart", "postgres_outage", "malformed"} <= set(found)
    assert "harness" not in found and "result" not in found  # helpers are not scenarios


def test_the_runner_reports_one_json_line_and_refuses_unknown_names() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "bench/faults.py", "--quick", "--seed", "5", "--only", "malformed"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["bench"] == "faults" and report["seed"] == 5
    assert list(report["scenarios"]) == ["malformed"]
    counts = report["scenarios"]["malformed"]
    assert set(counts) == {"sent", "stored", "lost", "double_counted", "dead_lettered",
                           "http_5xx"}
    assert counts["sent"] > 0 and counts["lost"] == 0 and counts["dead_lettered"] > 0
    assert "fault scenarios" in run.stdout  # the table came first
    bad = subprocess.run([sys.executable, "bench/faults.py", "--only", "nope"], cwd=REPO,
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and "unknown scenario" in bad.stderr
