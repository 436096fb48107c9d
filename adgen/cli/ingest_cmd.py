"""``adgen ingest``: move events from Kafka into the database (until stopped, or until idle)."""

from __future__ import annotations

import time

import typer

from adgen.cli.output import console, print_table
from adgen.db.engine import make_engine, session_factory
from adgen.ingest.consumer import IngestConsumer
from adgen.ingest.service import run_ingest
from adgen.ingest.stats import IngestStats
from adgen.settings import get_settings
from adgen.signals import stop_on_signals


def ingest(
    until_idle: float | None = typer.Option(
        None, "--until-idle", min=0.1,
        help="Stop once no new event arrives for this many seconds (default: run until "
        "SIGTERM or Ctrl-C).",
    ),
) -> None:
    """Consume the events topic into the database: idempotent, offsets after commit.

    Until stopped, it touches VAR_DIR/ingest.heartbeat while healthy and serves /metrics
    on ADGEN_INGEST_METRICS_PORT when set (as the ingest service does)."""
    settings = get_settings()
    started = time.monotonic()
    with console.status(f"joining group {settings.consumer_group!r}…") as status:
        def show(s: IngestStats) -> None:
            rate = s.messages / max(time.monotonic() - started, 1e-9)
            status.update(
                f"{s.inserted:,} stored · {s.duplicates:,} duplicates · "
                f"{s.dead_letters:,} dead letters · {rate:,.0f} msg/s"
            )

        if until_idle is None:
            stats = run_ingest(settings, stop_on_signals(), on_batch=show)
        else:
            engine = make_engine(settings.db_url)
            try:
                with IngestConsumer(settings, session_factory(engine)) as consumer:
                    stats = consumer.drain(until_idle, on_batch=show)
            finally:
                engine.dispose()
    _summary(stats, time.monotonic() - started)


def _summary(stats: IngestStats, elapsed_s: float) -> None:
    rows = [(name.replace("_", " "), f"{value:,}") for name, value in stats.as_dict().items()]
    rows.append(("elapsed", f"{elapsed_s:.1f} s"))
    print_table("ingest summary", ["", "count"], rows)
