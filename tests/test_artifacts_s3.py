"""Artifacts in an S3-compatible bucket (moto's standalone server on loopback), their rows
in PostgreSQL without bytes: what one host stores, another host (an empty var dir) fetches;
corruption in the cache or in the bucket is caught; the setting picks the store."""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from adgen.db import migrate
from adgen.db.engine import transaction
from adgen.db.models import Artifact, ModelVersion
from adgen.errors import ConfigError, ModelError
from adgen.model.artifacts import (
    ADAPTER,
    REWARD_MODEL,
    DatabaseArtifactStore,
    S3ArtifactStore,
    artifact_store,
    pack,
    s3_client,
    sha256_of,
)
from adgen.model.versions import ModelRegistry
from adgen.settings import Settings
from tests.artifact_folders import adapter_like, files_of

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A real S3 API (moto's standalone server) on a free loopback port."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials from the standard AWS environment variables, no ~/.aws of the machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def bucket(endpoint: str) -> str:
    """A new, empty bucket."""
    name = f"adgen-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


HostSettings = Callable[[str], Settings]


@pytest.fixture
def settings_of(tmp_path: Path, pg_url: str, endpoint: str, bucket: str) -> HostSettings:
    """The S3 settings of host ``name``: its own var dir, the shared database and bucket."""

    def settings(name: str) -> Settings:
        return Settings(
            var_dir=tmp_path / name,
            database_url=pg_url,
            artifact_store="s3",
            s3_bucket=bucket,
            s3_endpoint_url=endpoint,
            device="cpu",
        )

    return settings


def _store(settings: Settings, sessions: sessionmaker[Session]) -> S3ArtifactStore:
    store = artifact_store(settings, sessions)
    assert isinstance(store, S3ArtifactStore)
    return store


@pytest.fixture
def host_a(settings_of: HostSettings, pg_sessions: sessionmaker[Session]) -> S3ArtifactStore:
    return _store(settings_of("host-a"), pg_sessions)


@pytest.fixture
def host_b(settings_of: HostSettings, pg_sessions: sessionmaker[Session]) -> S3ArtifactStore:
    return _store(settings_of("host-b"), pg_sessions)


def test_a_folder_stored_on_one_host_is_fetched_on_another(
    host_a: S3ArtifactStore,
    host_b: S3ArtifactStore,
    pg_sessions: sessionmaker[Session],
    bucket: str,
    tmp_path: Path,
) -> None:
    folder = adapter_like(tmp_path)
    uploads: list[Any] = []
    host_a.client.meta.events.register("before-call.s3.PutObject", lambda **kw: uploads.append(1))
    digest = host_a.put(folder, ADAPTER)
    assert digest == sha256_of(pack(folder)[0])
    assert host_a.put(folder, ADAPTER) == digest and len(uploads) == 1  # stored once

    key = f"adgen/artifacts/{digest}"
    listed = host_a.client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [key]
    head = host_a.client.head_object(Bucket=bucket, Key=key)
    assert head["Metadata"] == {"format": "tar", "kind": ADAPTER}
    with pg_sessions() as s:
        rows = s.execute(
            sa.select(
                Artifact.sha256, Artifact.kind, Artifact.format, Artifact.size, Artifact.bytes
            )
        ).all()
    assert [tuple(r) for r in rows] == [(digest, ADAPTER, "tar", head["ContentLength"], None)]

    fetched = host_b.fetch(digest)
    assert fetched.is_relative_to(tmp_path / "host-b") and files_of(fetched) == files_of(folder)


def test_a_single_file_round_trips(
    host_a: S3ArtifactStore, host_b: S3ArtifactStore, tmp_path: Path
) -> None:
    file = tmp_path / "model.joblib"
    file.write_bytes(b"\x00weights\xff" * 100)
    fetched = host_b.fetch(host_a.put(file, REWARD_MODEL))
    assert fetched.is_file() and fetched.read_bytes() == file.read_bytes()


def test_a_corrupt_cache_entry_is_fetched_again(
    host_a: S3ArtifactStore,
    settings_of: HostSettings,
    pg_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    folder = adapter_like(tmp_path)
    digest = host_a.put(folder, ADAPTER)
    blob = tmp_path / "host-a" / "artifacts" / f"{digest}.tar"
    blob.write_bytes(b"garbage")
    fetched = _store(settings_of("host-a"), pg_sessions).fetch(digest)
    assert sha256_of(blob.read_bytes()) == digest and files_of(fetched) == files_of(folder)


def test_tampered_or_missing_objects_are_clear_errors(
    host_a: S3ArtifactStore, host_b: S3ArtifactStore, bucket: str, tmp_path: Path
) -> None:
    digest = host_a.put(adapter_like(tmp_path), ADAPTER)
    host_a.client.put_object(
        Bucket=bucket,
        Key=f"adgen/artifacts/{digest}",
        Body=b"tampered",
        Metadata={"format": "tar", "kind": ADAPTER},
    )
    with pytest.raises(ModelError, match=f"artifact {digest} in s3://{bucket}/.* is corrupt"):
        host_b.fetch(digest)
    with pytest.raises(ModelError, match=f"artifact {'0' * 64} is not in s3://{bucket}/"):
        host_b.fetch("0" * 64)


def test_a_failed_upload_is_a_clear_error_and_records_nothing(
    host_a: S3ArtifactStore, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    nowhere = S3ArtifactStore(pg_sessions, tmp_path / "c", host_a.client, "adgen-no-such-bucket")
    with pytest.raises(ModelError, match="could not store .* in s3://adgen-no-such-bucket/: .*"):
        nowhere.put(adapter_like(tmp_path), ADAPTER)
    with pg_sessions() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Artifact)) == 0


def test_the_database_store_names_the_setting_for_bytes_kept_in_s3(
    host_a: S3ArtifactStore, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = adapter_like(tmp_path)
    digest = host_a.put(folder, ADAPTER)
    database = DatabaseArtifactStore(pg_sessions, tmp_path / "db-host")
    with pytest.raises(ModelError, match="its bytes are in an S3-compatible store.*ARTIFACT_STORE"):
        database.fetch(digest)
    assert database.put(folder, ADAPTER) == digest  # fills the bytes into the existing row
    assert files_of(
        DatabaseArtifactStore(pg_sessions, tmp_path / "db-2").fetch(digest)
    ) == files_of(folder)


def test_the_schema_keeps_rows_without_bytes_until_they_are_moved(
    host_a: S3ArtifactStore, pg_url: str, tmp_path: Path
) -> None:
    host_a.put(adapter_like(tmp_path), ADAPTER)
    with pytest.raises(RuntimeError, match="1 artifacts keep their bytes in an S3-compatible"):
        migrate.downgrade(pg_url, "0006_cells")


def test_a_version_stored_in_s3_is_served_by_a_host_that_never_saw_it(
    settings_of: HostSettings, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    here = ModelRegistry(settings_of("host-a"))
    with transaction(pg_sessions) as session:
        digest = here.store_for(session).put(adapter_like(tmp_path), ADAPTER, session)
        version = ModelVersion(base_model="base", adapter_sha256=digest, status="candidate")
        session.add(version)
        session.flush()
        version_id = version.id

    there = ModelRegistry(settings_of("host-b"))
    with pg_sessions() as session:
        folder = there.adapter_folder(session.get_one(ModelVersion, version_id))
    assert folder is not None and folder.is_relative_to(tmp_path / "host-b")
    assert files_of(folder) == files_of(tmp_path / "adapter")


def test_s3_without_a_bucket_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADGEN_ARTIFACT_STORE", "s3")
    with pytest.raises(ValidationError, match="ADGEN_ARTIFACT_STORE=s3 needs ADGEN_S3_BUCKET"):
        Settings()
    with pytest.raises(ValidationError, match="artifact_store"):
        Settings(artifact_store="ftp")  # type: ignore[arg-type]


def test_s3_without_boto3_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now raises ImportError
    settings = Settings(var_dir=tmp_path, artifact_store="s3", s3_bucket="b")
    with pytest.raises(ConfigError, match=r"pip install 'adgen\[s3\]'"):
        s3_client(settings)


def test_the_database_is_the_default_store(
    tmp_path: Path, pg_sessions: sessionmaker[Session]
) -> None:
    store = artifact_store(Settings(var_dir=tmp_path), pg_sessions)
    assert isinstance(store, DatabaseArtifactStore)
    assert store.cache_dir == tmp_path / "artifacts"
