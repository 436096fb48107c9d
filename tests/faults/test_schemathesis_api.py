"""schemathesis over every endpoint (admin token included) against the real app on
PostgreSQL: no 5xx, and no answer that breaks its declared schema."""

from __future__ import annotations

from pathlib import Path

from faultlib import schemathesis_api


def test_schemathesis_finds_no_server_error_and_no_schema_break(tmp_path: Path) -> None:
    result = schemathesis_api.run(tmp_path, quick=True, seed=0)
    assert result.sent > 100, result.details
    assert result.http_5xx == 0, result.details
    assert "schema failures: 0" in result.details, result.details
    assert result.clean
