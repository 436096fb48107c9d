"""The ingest service: Kafka → PostgreSQL consumer until SIGTERM (``python -m services.ingest``)."""

from __future__ import annotations

import logging

from adgen.errors import AdgenError
from adgen.ingest.service import run_ingest
from adgen.settings import get_settings
from adgen.signals import stop_on_signals

logger = logging.getLogger("services.ingest")


def main() -> None:
    """Read the ``ADGEN_*`` settings and consume until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    stop = stop_on_signals()
    try:
        run_ingest(get_settings(), stop)
    except AdgenError as exc:
        logger.error("ingest service cannot run: %s", exc)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
