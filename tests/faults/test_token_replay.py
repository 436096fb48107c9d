"""Replayed tokens count once per impression (the scenario shared with bench/faults.py)."""

from __future__ import annotations

from pathlib import Path

from faultlib import token_replay


def test_token_replay_counts_once(tmp_path: Path) -> None:
    result = token_replay.run(tmp_path, quick=True, seed=0)
    assert result.sent == 4 * token_replay.REPLAYS * 2
    assert result.stored == result.sent  # every replay is kept as an event
    assert result.clean, result
    assert "4 clicks and 4 conversions counted" in result.details
