"""Records of training runs in ``training_runs`` (the caller owns the transaction)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adgen.db.models import TrainingRun
from adgen.training.config import TrainConfig
from adgen.vocabulary import RunStatus


def start_run(session: Session, base_model: str, config: TrainConfig) -> TrainingRun:
    """A new run in status ``running`` (flushed, with its id)."""
    run = TrainingRun(
        trainer=config.trainer,
        status=RunStatus.RUNNING,
        base_model=base_model,
        hyperparams=config.as_dict(),
        metrics={},
    )
    session.add(run)
    session.flush()
    return run


def finish_run(
    session: Session,
    run_id: int,
    status: str,
    duration_s: float,
    *,
    reason: str | None = None,
    error: str | None = None,
    metrics: dict[str, Any] | None = None,
    **fields: Any,
) -> TrainingRun:
    """Close run ``run_id`` with its outcome; ``fields`` set other columns (data window...)."""
    run = session.get_one(TrainingRun, run_id)
    run.status = status
    run.reason = reason
    run.error = error
    run.finished_at = datetime.now(UTC)
    run.duration_s = round(duration_s, 3)
    if metrics is not None:
        run.metrics = metrics
    for name, value in fields.items():
        setattr(run, name, value)
    return run


def last_succeeded(session: Session, base_model: str) -> TrainingRun | None:
    """The latest successful run of this lineage."""
    return session.scalars(
        select(TrainingRun)
        .where(TrainingRun.base_model == base_model, TrainingRun.status == RunStatus.SUCCEEDED)
        .order_by(TrainingRun.id.desc())
        .limit(1)
    ).first()
