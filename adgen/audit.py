"""The audit log: every operator action (pause, resume, controls, promote, rollback) with
who did it, when, and the state before and after. The caller owns the transaction, so an
action and its audit row are stored together or not at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from adgen.db.models import AuditEntry, ModelVersion
from adgen.errors import ValidationError

#: The most rows one ``recent`` call returns.
MAX_LIMIT = 1000
T = TypeVar("T")


def record(
    session: Session,
    actor: str,
    action: str,
    target_type: str,
    target_id: int | str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditEntry:
    """Add one audit row (flushed, so it has its id and time)."""
    if not actor.strip():
        raise ValidationError("an audit entry needs an actor (who made the change)")
    entry = AuditEntry(
        actor=actor.strip()[:200],
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
    )
    session.add(entry)
    session.flush()
    return entry


def recent(session: Session, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
    """The newest audit rows first, ``limit`` (at most MAX_LIMIT) from ``offset``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be in 1..{MAX_LIMIT}, got {limit}")
    if offset < 0:
        raise ValidationError(f"offset must be >= 0, got {offset}")
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(stmt))


def _version_statuses(session: Session) -> dict[str, str]:
    rows = session.execute(select(ModelVersion.id, ModelVersion.status)).all()
    return {str(vid): status for vid, status in rows}


def record_version_change(
    session: Session, actor: str, action: str, version_id: int, change: Callable[[], T]
) -> T:
    """Run ``change`` (a promote or rollback of ``version_id``) and record it, with the
    statuses of the versions it changed before and after."""
    before = _version_statuses(session)
    result = change()
    session.flush()
    after = _version_statuses(session)
    changed = sorted(k for k in after if before.get(k) != after[k])
    record(
        session, actor, action, "model_version", version_id,
        {k: before.get(k) for k in changed}, {k: after[k] for k in changed},
    )
    return result
