"""Run ingest as a long-lived process: heartbeat file, ``/metrics`` port, until stopped.

``adgen ingest`` and ``python -m services.ingest`` both run this, so they write the same
heartbeat and serve the same metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from adgen.db.engine import make_engine, session_factory
from adgen.ingest.consumer import HEARTBEAT_NAME, IngestConsumer
from adgen.ingest.stats import IngestStats
from adgen.settings import Settings


def run_ingest(
    settings: Settings,
    stop: threading.Event,
    on_batch: Callable[[IngestStats], None] | None = None,
) -> IngestStats:
    """Consume until ``stop`` is set, touching ``VAR_DIR/ingest.heartbeat`` while healthy and
    serving ``/metrics`` on ``ADGEN_INGEST_METRICS_PORT`` (when set)."""
    engine = make_engine(settings.db_url)
    try:
        consumer = IngestConsumer(settings, session_factory(engine))
        if settings.ingest_metrics_port is not None:
            consumer.metrics.serve(settings.api_host, settings.ingest_metrics_port)
        return consumer.run(
            stop, on_batch=on_batch, heartbeat_file=settings.var_dir / HEARTBEAT_NAME
        )
    finally:
        engine.dispose()
