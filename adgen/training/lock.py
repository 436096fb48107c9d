"""One training run at a time, across processes and replicas.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a dedicated
connection for the whole run. SQLite (one machine): an exclusive ``flock`` on a file under
``var_dir``. Neither waits: a second run learns at once that it must not train.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from adgen.db.engine import is_postgres

logger = logging.getLogger(__name__)

#: The advisory-lock key of the trainer ("adgentrn" as a 64-bit integer).
TRAINER_LOCK_KEY = int.from_bytes(b"adgentrn", "big")
LOCK_FILE = "trainer.lock"


@contextmanager
def training_lock(engine: Engine, var_dir: Path) -> Iterator[bool]:
    """Try to take the trainer lock; yields True when this run holds it."""
    if is_postgres(engine):
        with _advisory_lock(engine) as held:
            yield held
    else:
        with _file_lock(var_dir / LOCK_FILE) as held:
            yield held


@contextmanager
def _advisory_lock(engine: Engine) -> Iterator[bool]:
    with engine.connect() as conn:
        held = bool(
            conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": TRAINER_LOCK_KEY}).scalar()
        )
        conn.commit()  # session-level lock: no transaction left open while training
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": TRAINER_LOCK_KEY})
                conn.commit()


@contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
