"""Generation runs with no database transaction open: while the model writes, another
process can write to the same SQLite file (an open write would hold its only write lock)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adgen.brief import Brief
from adgen.db.campaigns import create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import Variant
from adgen.generator import GenerationResult, generate_and_store
from adgen.generator import campaign as generation
from adgen.model.versions import ModelRegistry
from adgen.settings import Settings

BRIEF = Brief(name="shoes", product="trail running shoes", brand="Stride", audience="runners")


class _Loaded:
    tokenizer = None

    @contextmanager
    def activated(self) -> Iterator[None]:
        yield None


class _NoWeights(ModelRegistry):
    """The real registry minus the weights: the model is the neighbour under test here."""

    def load_with(self, version: Any, path: Path | None) -> Any:
        return _Loaded()


def test_another_writer_gets_through_while_the_model_generates(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = session_factory(make_engine(sqlite_url))
    with transaction(sessions) as s:
        cid = create_campaign(s, BRIEF).id
    database = sa.make_url(sqlite_url).database
    assert database is not None
    writes: list[str] = []

    def fake_generate(*_args: Any, seed: int, **_kw: Any) -> GenerationResult:
        # an impatient writer (no busy wait): fails with "database is locked" if the
        # generation held a write transaction
        other = sqlite3.connect(database, timeout=0)
        try:
            other.execute("UPDATE campaigns SET name = 'renamed' WHERE id = ?", (cid,))
            other.commit()
            writes.append("ok")
        finally:
            other.close()
        return GenerationResult(seed=seed)

    monkeypatch.setattr(generation, "generate_variants", fake_generate)
    registry = _NoWeights(Settings(var_dir=tmp_path / "var", database_url=sqlite_url))
    result = generate_and_store(sessions, registry, cid, 2, rng_seed=5)
    assert writes == ["ok"] and result.seed == 5 and result.model_version_id == 1
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Variant)) == 0
        assert s.scalar(sa.text("SELECT name FROM campaigns")) == "renamed"
