"""Ingest SIGKILLed three times by pid while events flow: nothing lost, nothing twice."""

from __future__ import annotations

import re
from pathlib import Path

from faultlib import ingest_kill


def test_three_sigkills_of_ingest_lose_nothing(tmp_path: Path) -> None:
    result = ingest_kill.run(tmp_path, quick=True, seed=0)
    assert result.sent > 0 and result.stored == result.sent
    assert result.lost == 0 and result.double_counted == 0 and result.http_5xx == 0
    assert re.match(r"3 SIGKILLs of pids \[\d+, \d+, \d+\]", result.details)
