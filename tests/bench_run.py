"""Running a ``bench/`` script as a user would, for the benchmarks' smoke tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchRun:
    """What a benchmark printed: its stdout and the JSON of its last line."""

    stdout: str
    result: dict[str, Any]

    @property
    def lines(self) -> list[str]:
        """The non-empty lines of stdout, the JSON line last."""
        return self.stdout.strip().splitlines()


def run_bench(
    script: str, *args: str, timeout_s: float, env: dict[str, str] | None = None
) -> BenchRun:
    """Run ``bench/<script>`` with ``args`` from the repository root; it must exit 0 and print
    its table, then one JSON line (a failure shows the end of its stderr)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) > 1, f"{script}: a table comes before the JSON line"
    return BenchRun(proc.stdout, json.loads(lines[-1]))
