"""1% malformed messages in the stream: all dead-lettered, every valid event stored."""

from __future__ import annotations

from pathlib import Path

from faultlib import malformed


def test_malformed_messages_all_land_in_dead_letters(tmp_path: Path) -> None:
    result = malformed.run(tmp_path, quick=True, seed=0)
    assert result.sent > 0
    assert result.dead_lettered == result.sent // 101  # 1 bad per 100 good
    assert result.stored + result.dead_lettered == result.sent
    assert result.lost == 0 and result.double_counted == 0 and result.http_5xx == 0
