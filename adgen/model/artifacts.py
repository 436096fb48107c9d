"""Content-addressed artifacts: a version's adapter or a reward model, any host can load.

An artifact is a folder (stored as a tar of its files) or a single file, kept under the
sha256 of those bytes. ``ArtifactStore`` is the interface: ``put(path) -> digest`` and
``fetch(digest) -> local path``. ``DatabaseArtifactStore`` (the default) keeps the bytes in
the ``artifacts`` table (PostgreSQL or SQLite) and caches them on local disk under
``<var_dir>/artifacts``; every fetch checks the cached bytes against the digest, re-fetches
a corrupt cache entry, and refuses a database blob whose hash is wrong.

An S3-compatible store would implement the same two methods (boto3 is not a dependency yet).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tarfile
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import Artifact
from adgen.errors import ModelError
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


class DatabaseArtifactStore:
    """Artifacts in the ``artifacts`` table, cached (and verified) on local disk."""

    def __init__(self, sessions: sessionmaker[Session], cache_dir: Path) -> None:
        self.sessions = sessions
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._verified: dict[str, Path] = {}
        """Digests checked (and unpacked) by this process, and their local copy."""

    def put(self, path: Path, kind: str, session: Session | None = None) -> str:
        """Store ``path`` (once per content) through ``session`` (the caller's transaction)
        or a short transaction of its own; the local cache gets the copy at once."""
        data, fmt = pack(path)
        digest = sha256_of(data)
        if session is not None:
            self._insert(session, digest, kind, fmt, data)
        else:
            with transaction(self.sessions) as own:
                self._insert(own, digest, kind, fmt, data)
        self._unpack(digest, fmt, data)
        logger.info("stored %s artifact %s (%d bytes)", kind, digest[:12], len(data))
        return digest

    @staticmethod
    def _insert(session: Session, digest: str, kind: str, fmt: str, data: bytes) -> None:
        if session.get(Artifact, digest) is None:
            session.add(Artifact(sha256=digest, kind=kind, format=fmt, size=len(data), bytes=data))
            session.flush()

    def fetch(self, digest: str) -> Path:
        """The verified local copy of ``digest``, fetched from the database when the cache
        lacks it or holds bytes with another hash."""
        with self._lock:
            known = self._verified.get(digest)
            if known is not None and known.exists():
                return known
            for fmt in ("tar", "file"):
                cached = self._blob(digest, fmt)
                if cached.is_file():
                    data = cached.read_bytes()
                    if sha256_of(data) == digest:
                        return self._unpack(digest, fmt, data)
                    logger.warning("cached artifact %s is corrupt: fetching it again", cached)
                    cached.unlink()
            with self.sessions() as session:
                row = session.execute(
                    select(Artifact.format, Artifact.bytes).where(Artifact.sha256 == digest)
                ).first()
            if row is None:
                raise ModelError(f"artifact {digest} is not in the database")
            fmt, data = row
            if sha256_of(data) != digest:
                raise ModelError(
                    f"artifact {digest} in the database is corrupt (its bytes hash to "
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


def artifact_cache_dir(settings: Settings) -> Path:
    """Where fetched artifacts are cached on this host."""
    return settings.var_dir / "artifacts"


def database_store(
    settings: Settings, sessions: sessionmaker[Session] | Session | None = None
) -> DatabaseArtifactStore:
    """The default store: the database of ``sessions`` (a factory, or a session whose
    engine to use), else the settings' database through an engine of its own."""
    if isinstance(sessions, Session):
        sessions = session_factory(sessions.get_bind().engine)
    elif sessions is None:
        sessions = session_factory(make_engine(settings.db_url))
    return DatabaseArtifactStore(sessions, artifact_cache_dir(settings))
