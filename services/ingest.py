"""The ingest service: Kafka → PostgreSQL consumer until SIGTERM (``python -m services.ingest``)."""

from __future__ import annotations

import logging

from adgen.db.engine import make_engine, session_factory
from adgen.errors import AdgenError
from adgen.ingest.consumer import IngestConsumer
from adgen.settings import get_settings
from adgen.signals import stop_on_signals

logger = logging.getLogger("services.ingest")
#: Touched every few seconds under ADGEN_VAR_DIR; docker-compose's health check reads its age.
HEARTBEAT_NAME = "ingest.heartbeat"


def main() -> None:
    """Read the ``ADGEN_*`` settings and consume until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = stop_on_signals()
    try:
        settings = get_settings()
        engine = make_engine(settings.db_url)
        try:
            IngestConsumer(settings, session_factory(engine)).run(
                stop, heartbeat_file=settings.var_dir / HEARTBEAT_NAME
            )
        finally:
            engine.dispose()
    except AdgenError as exc:
        logger.error("ingest service cannot run: %s", exc)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
