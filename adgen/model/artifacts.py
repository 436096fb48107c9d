"""Content-addressed artifacts: a version's adapter or a reward model, any host can load.

An artifact is a folder (stored as a tar of its files) or a single file, kept under the
sha256 of those bytes. ``ArtifactStore`` is the interface: ``put(path) -> digest`` and
``fetch(digest) -> local path``. ``CachedArtifactStore`` does what every store shares: it
caches artifacts on local disk under ``<var_dir>/artifacts``, checks the cached bytes
against the digest on every fetch, re-fetches a corrupt cache entry, refuses stored bytes
whose hash is wrong, and unpacks a tar into a folder. A backend supplies only ``_write``
(these bytes under this digest) and ``_read`` (the format and bytes of a digest):

* ``DatabaseArtifactStore`` (the default, ``ADGEN_ARTIFACT_STORE=database``) keeps the bytes
  in the ``artifacts`` table (PostgreSQL or SQLite).
* ``S3ArtifactStore`` (``ADGEN_ARTIFACT_STORE=s3``; AWS S3, MinIO, Ceph, R2, ...) keeps them
  as objects ``<ADGEN_S3_PREFIX><sha256>``, their format and kind in the object metadata;
  boto3 is imported only then (``pip install 'adgen[s3]'``), with credentials from the
  standard AWS chain (environment, ``~/.aws``, instance role), never from adgen's settings.

Either way every artifact has its row in ``artifacts`` (sha256, kind, format, size): the
versions and reward models that name it reference that row, and it is written in the
caller's transaction, so a committed version always names a stored artifact. With S3 the
row's ``bytes`` are NULL; the object is uploaded before the row is written, so a rolled-back
transaction leaves at most an unreferenced object. Switching stores does not move artifacts
already stored: a store fetches only what it holds (a database row whose bytes live in S3
is a clear error naming the setting, and the reverse is a missing object).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tarfile
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import ARTIFACT_FORMATS, Artifact
from adgen.errors import ConfigError, ModelError
from adgen.settings import Settings

logger = logging.getLogger(__name__)

ADAPTER = "adapter"
REWARD_MODEL = "reward_model"


class ArtifactStore(Protocol):
    """Where artifacts live: put bytes once, fetch them anywhere by digest."""

    def put(self, path: Path, kind: str, session: Session | None = None) -> str:
        """Store the folder or file at ``path``; returns its sha256 (hex)."""
        ...

    def fetch(self, digest: str) -> Path:
        """A local, verified copy of artifact ``digest`` (a folder or a file)."""
        ...


def pack(path: Path) -> tuple[bytes, str]:
    """The bytes an artifact is stored as, and their format: a reproducible tar of a
    folder's files (sorted, no owners or times), or a file's own bytes."""
    if path.is_file():
        return path.read_bytes(), "file"
    if not path.is_dir():
        raise ModelError(f"cannot store {path} as an artifact: no such file or folder")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            info = tarfile.TarInfo(item.relative_to(path).as_posix())
            info.size = item.stat().st_size
            info.mode = 0o644
            with item.open("rb") as fh:
                tar.addfile(info, fh)
    return buffer.getvalue(), "tar"


def sha256_of(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class CachedArtifactStore(ABC):
    """Artifacts cached (and verified) on local disk; a backend stores and reads the bytes.

    Every artifact also gets its row in the ``artifacts`` table of ``sessions`` (see
    :func:`record`), written by the backend's ``_write``.
    """

    where: str
    """Where the bytes live, in words (for messages)."""

    def __init__(self, sessions: sessionmaker[Session], cache_dir: Path) -> None:
        self.sessions = sessions
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._verified: dict[str, Path] = {}
        """Digests checked (and unpacked) by this process, and their local copy."""

    @abstractmethod
    def _write(self, session: Session, digest: str, kind: str, fmt: str, data: bytes) -> None:
        """Store ``data`` (format ``fmt``) under ``digest``, once, recording it in ``session``."""

    @abstractmethod
    def _read(self, digest: str) -> tuple[str, bytes]:
        """The format and stored bytes of ``digest``; ModelError when it is not stored."""

    def put(self, path: Path, kind: str, session: Session | None = None) -> str:
        """Store ``path`` (once per content) through ``session`` (the caller's transaction)
        or a short transaction of its own; the local cache gets the copy at once."""
        data, fmt = pack(path)
        digest = sha256_of(data)
        if session is not None:
            self._write(session, digest, kind, fmt, data)
        else:
            with transaction(self.sessions) as own:
                self._write(own, digest, kind, fmt, data)
        self._unpack(digest, fmt, data)
        logger.info(
            "stored %s artifact %s (%d bytes) in %s", kind, digest[:12], len(data), self.where
        )
        return digest

    def fetch(self, digest: str) -> Path:
        """The verified local copy of ``digest``, fetched from the store when the cache
        lacks it or holds bytes with another hash."""
        with self._lock:
            known = self._verified.get(digest)
            if known is not None and known.exists():
                return known
            for fmt in ARTIFACT_FORMATS:
                cached = self._blob(digest, fmt)
                if cached.is_file():
                    data = cached.read_bytes()
                    if sha256_of(data) == digest:
                        return self._unpack(digest, fmt, data)
                    logger.warning("cached artifact %s is corrupt: fetching it again", cached)
                    cached.unlink()
            fmt, data = self._read(digest)
            if sha256_of(data) != digest:
                raise ModelError(
                    f"artifact {digest} in {self.where} is corrupt (its bytes hash to "
                    f"{sha256_of(data)}); restore it from a backup or retrain"
                )
            return self._unpack(digest, fmt, data)

    def _blob(self, digest: str, fmt: str) -> Path:
        return self.cache_dir / f"{digest}.{fmt}"

    def _unpack(self, digest: str, fmt: str, data: bytes) -> Path:
        """Write the verified bytes into the cache; a tar is (re-)extracted into a folder."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        blob = self._blob(digest, fmt)
        if not blob.is_file():
            tmp = blob.with_name(f"{blob.name}.tmp{os.getpid()}")
            tmp.write_bytes(data)
            tmp.replace(blob)
        if fmt == "file":
            self._verified[digest] = blob
            return blob
        folder = self.cache_dir / digest
        tmp_dir = folder.with_name(f"{digest}.tmp{os.getpid()}")
        shutil.rmtree(tmp_dir, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(tmp_dir, filter="data")
        shutil.rmtree(folder, ignore_errors=True)
        tmp_dir.rename(folder)
        self._verified[digest] = folder
        return folder


class DatabaseArtifactStore(CachedArtifactStore):
    """Artifacts in the ``artifacts`` table, bytes included (the default store)."""

    where = "the database"

    def _write(self, session: Session, digest: str, kind: str, fmt: str, data: bytes) -> None:
        """The row of ``digest`` with its bytes."""
        record(session, digest, kind, fmt, data, keep_bytes=True)

    def _read(self, digest: str) -> tuple[str, bytes]:
        """The format and bytes of the row of ``digest``."""
        with self.sessions() as session:
            row = session.execute(
                select(Artifact.format, Artifact.bytes).where(Artifact.sha256 == digest)
            ).first()
        if row is None:
            raise ModelError(f"artifact {digest} is not in the database")
        fmt, data = row
        if data is None:
            raise ModelError(
                f"artifact {digest} is recorded in the database but its bytes are in an "
                f"S3-compatible store: set ADGEN_ARTIFACT_STORE=s3 and its ADGEN_S3_* settings"
            )
        return fmt, data


class S3ArtifactStore(CachedArtifactStore):
    """Artifacts as objects ``<prefix><sha256>`` in an S3-compatible bucket; their rows in
    the ``artifacts`` table carry no bytes."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cache_dir: Path,
        client: Any,
        bucket: str,
        prefix: str = "",
    ) -> None:
        super().__init__(sessions, cache_dir)
        self.client = client
        """A boto3 S3 client (thread-safe)."""
        self.bucket = bucket
        self.prefix = prefix
        self.where = f"s3://{bucket}/{prefix}"

    def _key(self, digest: str) -> str:
        return f"{self.prefix}{digest}"

    def _write(self, session: Session, digest: str, kind: str, fmt: str, data: bytes) -> None:
        """Upload the object unless it is there with the right size, then record its row."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._key(digest)
        try:
            if self._size(key) != len(data):
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, Metadata={"format": fmt, "kind": kind}
                )
        except (BotoCoreError, ClientError) as exc:
            raise ModelError(f"could not store artifact {digest} in {self.where}: {exc}") from exc
        record(session, digest, kind, fmt, data, keep_bytes=False)

    def _size(self, key: str) -> int | None:
        """The size of object ``key``, None when there is none."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    def _read(self, digest: str) -> tuple[str, bytes]:
        """The format (object metadata) and bytes of object ``<prefix><digest>``."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(digest))
            data = obj["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            if _missing(exc):
                raise ModelError(f"artifact {digest} is not in {self.where}") from exc
            raise ModelError(f"could not read artifact {digest} from {self.where}: {exc}") from exc
        fmt = obj.get("Metadata", {}).get("format")
        if fmt not in ARTIFACT_FORMATS:
            raise ModelError(
                f"artifact {digest} in {self.where} has no valid format in its metadata ({fmt!r})"
            )
        return str(fmt), bytes(data)


def _missing(exc: Exception) -> bool:
    """Whether a botocore error is S3 saying that the object does not exist."""
    error = getattr(exc, "response", {}).get("Error", {})
    return str(error.get("Code")) in {"404", "NoSuchKey", "NotFound"}


def record(
    session: Session, digest: str, kind: str, fmt: str, data: bytes, *, keep_bytes: bool
) -> None:
    """The ``artifacts`` row of ``digest``, added once; with ``keep_bytes`` it carries
    ``data`` (also filled into a row recorded without them by another store)."""
    row = session.get(Artifact, digest)
    if row is None:
        stored = data if keep_bytes else None
        session.add(Artifact(sha256=digest, kind=kind, format=fmt, size=len(data), bytes=stored))
    elif keep_bytes and row.bytes is None:
        row.bytes = data
    session.flush()


def artifact_cache_dir(settings: Settings) -> Path:
    """Where fetched artifacts are cached on this host."""
    return settings.var_dir / "artifacts"


def artifact_store(
    settings: Settings, sessions: sessionmaker[Session] | Session | None = None
) -> CachedArtifactStore:
    """The store ``ADGEN_ARTIFACT_STORE`` names, recording artifacts in the database of
    ``sessions`` (a factory, or a session whose engine to use), else the settings' database
    through an engine of its own."""
    if isinstance(sessions, Session):
        sessions = session_factory(sessions.get_bind().engine)
    elif sessions is None:
        sessions = session_factory(make_engine(settings.db_url))
    cache_dir = artifact_cache_dir(settings)
    if settings.artifact_store == "database":
        return DatabaseArtifactStore(sessions, cache_dir)
    if settings.s3_bucket is None:  # the settings refuse this; a guard for hand-made ones
        raise ConfigError("ADGEN_ARTIFACT_STORE=s3 needs ADGEN_S3_BUCKET")
    return S3ArtifactStore(
        sessions, cache_dir, s3_client(settings), settings.s3_bucket, settings.s3_prefix
    )


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for ``ADGEN_S3_ENDPOINT_URL`` (AWS itself when unset), its
    credentials and region from the standard AWS chain."""
    try:
        import boto3
    except ImportError as exc:
        raise ConfigError(
            "ADGEN_ARTIFACT_STORE=s3 needs boto3, which is not installed: pip install 'adgen[s3]'"
        ) from exc
    return boto3.session.Session().client("s3", endpoint_url=settings.s3_endpoint_url)
