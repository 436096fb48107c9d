"""PostgreSQL (a private cluster) stopped and started twice under API traffic: no 5xx,
every accepted event stored once."""

from __future__ import annotations

from pathlib import Path

from faultlib import postgres_outage


def test_two_postgres_outages_lose_nothing(tmp_path: Path) -> None:
    result = postgres_outage.run(tmp_path, quick=True, seed=0)
    assert result.sent > 0 and result.stored == result.sent
    assert result.lost == 0 and result.double_counted == 0 and result.http_5xx == 0
    assert result.details.startswith("2 outages of PostgreSQL")
