"""Content-addressed artifacts in the database, cached and verified on local disk: what one
host stores, another host (another var dir, empty) fetches; corruption is caught."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from adgen.db import migrate
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import Artifact
from adgen.errors import ModelError
from adgen.model.artifacts import ADAPTER, DatabaseArtifactStore, pack, sha256_of
from tests.artifact_folders import adapter_like, files_of


@pytest.fixture(params=["postgresql", "sqlite"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> sessionmaker[Session]:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_sessions")  # type: ignore[no-any-return]
    url = f"sqlite:///{(tmp_path / 'a.db').as_posix()}"
    migrate.upgrade(url)
    return session_factory(make_engine(url))


def test_a_folder_stored_on_one_host_is_fetched_on_another(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = adapter_like(tmp_path)
    here = DatabaseArtifactStore(sessions, tmp_path / "host-a" / "artifacts")
    digest = here.put(folder, ADAPTER)
    assert digest == sha256_of(pack(folder)[0]) and len(digest) == 64
    assert here.put(folder, ADAPTER) == digest  # content-addressed: stored once
    with sessions() as s:
        rows = s.execute(sa.select(Artifact.sha256, Artifact.kind, Artifact.format)).all()
    assert [tuple(r) for r in rows] == [(digest, ADAPTER, "tar")]

    there = DatabaseArtifactStore(sessions, tmp_path / "host-b" / "artifacts")
    fetched = there.fetch(digest)
    assert fetched.is_relative_to(tmp_path / "host-b") and files_of(fetched) == files_of(folder)


def test_a_single_file_round_trips(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    file = tmp_path / "model.joblib"
    file.write_bytes(b"\x00weights\xff" * 100)
    digest = DatabaseArtifactStore(sessions, tmp_path / "a").put(file, "reward_model")
    fetched = DatabaseArtifactStore(sessions, tmp_path / "b").fetch(digest)
    assert fetched.read_bytes() == file.read_bytes()


def test_a_corrupt_cache_entry_is_fetched_again(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = adapter_like(tmp_path)
    digest = DatabaseArtifactStore(sessions, tmp_path / "cache").put(folder, ADAPTER)
    blob = tmp_path / "cache" / f"{digest}.tar"
    blob.write_bytes(b"garbage")
    fetched = DatabaseArtifactStore(sessions, tmp_path / "cache").fetch(digest)
    assert sha256_of(blob.read_bytes()) == digest
    assert files_of(fetched) == files_of(folder)


def test_a_corrupt_database_blob_is_a_clear_error(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    digest = DatabaseArtifactStore(sessions, tmp_path / "a").put(adapter_like(tmp_path), ADAPTER)
    with transaction(sessions) as s:
        s.execute(sa.update(Artifact).values(bytes=b"tampered"))
    with pytest.raises(ModelError, match=f"artifact {digest} in the database is corrupt"):
        DatabaseArtifactStore(sessions, tmp_path / "b").fetch(digest)
    with pytest.raises(ModelError, match="is not in the database"):
        DatabaseArtifactStore(sessions, tmp_path / "b").fetch("0" * 64)


def test_nothing_to_store_is_a_clear_error(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file or folder"):
        DatabaseArtifactStore(sessions, tmp_path / "a").put(tmp_path / "missing", ADAPTER)
    with sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Artifact)) == 0
