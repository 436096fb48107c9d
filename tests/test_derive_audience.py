"""bench/derive_audience.py: fits within-test weights from an Upworthy-like file, the same
way every time; the shipped derived audience loads and carries its attribution."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from adgen.audience import AUDIENCES_DIR, load_audience

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["clickability_test_id", "headline", "impressions", "clicks", "eyecatcher_id",
           "test_week"]


def _write(path: Path) -> None:
    """80 tests of four headlines on one image, made of random filler words: "secret"
    doubles the click rate; the tests' base rates differ widely (which within-test
    comparison must ignore)."""
    rng = np.random.default_rng(0)
    fillers = ["cats", "rain", "maps", "jobs", "town", "song", "bread", "trees"]
    with gzip.open(path, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for t in range(80):
            base = float(rng.uniform(0.005, 0.05))
            for arm in range(4):
                words = list(rng.choice(fillers, 3, replace=False))
                secret = bool(rng.random() < 0.5)
                text = " ".join([*(["secret"] if secret else []), *words, str(arm)])
                clicks = int(rng.binomial(40_000, 2 * base if secret else base))
                writer.writerow([f"t{t}", text, 40_000, clicks, f"img{t}", 201401])


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "derive_audience.py"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_derived_weights_find_the_word_that_drives_clicks_deterministically(
    tmp_path: Path,
) -> None:
    data = tmp_path / "tests.csv.gz"
    _write(data)
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    for out in outs:
        proc = _run("--data", str(data), "--out", str(out), "--words", "3", "--min-arms", "5")
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert outs[0].read_bytes() == outs[1].read_bytes()
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["bench"] == "derive_audience" and result["groups"] == 80
    audience = load_audience(outs[0])
    weights = audience.contains
    assert "secret" in weights and abs(weights["secret"] - np.log(2)) < 0.25
    assert all(abs(w) < abs(weights["secret"]) for k, w in weights.items() if k != "secret")


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = _run("--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x.json"))
    assert proc.returncode != 0 and "does not exist" in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_shipped_derived_audience_loads_with_its_attribution() -> None:
    spec = json.loads((AUDIENCES_DIR / "upworthy.json").read_text())
    assert "Upworthy Research Archive" in spec["source"] and "CC BY 4.0" in spec["source"]
    audience = load_audience(AUDIENCES_DIR / "upworthy.json")
    assert len(audience.contains) >= 10 and 0 < audience.base_ctr < 0.05


def test_phrase_audience_rewards_only_words() -> None:
    audience = load_audience(AUDIENCES_DIR / "phrases.json")
    assert audience.weights == {} and audience.length_target is None
    assert audience.true_ctr("Comfort for every morning run") > audience.true_ctr(
        "Introducing the ultimate new shoe"
    )
