"""The broker killed and restarted under API traffic: the API spools, says degraded,
rebuilds its producer, replays, answers no 5xx, and every accepted event is stored."""

from __future__ import annotations

import re
from pathlib import Path

from faultlib import broker_restart


def test_a_broker_restart_loses_no_accepted_event(tmp_path: Path) -> None:
    result = broker_restart.run(tmp_path, quick=True, seed=0)
    assert result.sent > 0 and result.stored == result.sent
    assert result.lost == 0 and result.double_counted == 0 and result.http_5xx == 0
    found = re.search(r"broker pid (\d+) killed and restarted as pid (\d+)", result.details)
    assert found and found[1] != found[2]  # really a new broker process
    spooled = re.search(r"most spooled (\d+)", result.details)
    assert spooled and int(spooled[1]) > 0  # the spool was used (and drained: lost == 0)
    assert "degraded seen True" in result.details
