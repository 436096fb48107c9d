"""``adgen demo`` as a new user runs it: a subprocess in an empty working directory with the
default relative ``var/``, the embedded broker and SQLite. Every training cycle must train
(the adapter path once resolved to ``var/models/var/models/v3`` there)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # loads the real model and trains

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(1800)  # two training cycles and rollouts on a shared CPU
def test_short_demo_from_a_fresh_working_directory_trains_every_cycle(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADGEN_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        ADGEN_MIN_PAIRS="1",
        ADGEN_PAIR_THRESHOLD="0.6",
        ADGEN_RM_SAMPLES="0",
        ADGEN_TRAIN_BATCH_SIZE="2",
        ADGEN_GEN_MAX_NEW_TOKENS="24",
        ADGEN_GEN_MAX_ATTEMPTS="1",
        ADGEN_ROLLOUT_VARIANTS="1",
        ADGEN_ROLLOUT_BEST_OF="1",
        ADGEN_BASE_MODEL_ZH="smollm2-135m-instruct",  # one small base model keeps it short
    )
    cmd = [sys.executable, "-m", "adgen.cli.main", "demo", "--rounds", "2",
           "--impressions", "300", "--variants", "2", "--train-steps", "1"]
    done = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1700, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output and "ModelError" not in output, output[-4000:]
    assert " INFO " not in output and "Loading weights" not in output  # logs go to the file

    var = tmp_path / "var"
    assert (var / "demo.log").is_file() and (var / "demo_rounds.png").is_file()
    with sqlite3.connect(var / "demo.db") as db:
        runs = [s for (s,) in db.execute("SELECT status FROM training_runs ORDER BY id")]
        adapters = db.execute(
            "SELECT count(*) FROM model_versions v JOIN artifacts a "
            "ON a.sha256 = v.adapter_sha256 WHERE v.parent_id IS NOT NULL"
        ).fetchone()[0]
    assert runs and "failed" not in runs and runs[0] == "succeeded", runs
    assert adapters == runs.count("succeeded")  # each candidate's adapter is an artifact
    assert "round 1: serving" in done.stdout and "round 2: serving" in done.stdout
    assert not (var / "models" / "var").exists()
