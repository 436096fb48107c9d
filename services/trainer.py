"""The trainer service: scheduled training cycles and gate decisions until SIGTERM
(``python -m services.trainer``)."""

from __future__ import annotations

import logging

from adgen.errors import AdgenError
from adgen.settings import get_settings
from adgen.signals import stop_on_signals
from adgen.training.scheduler import run_trainer

logger = logging.getLogger("services.trainer")


def main() -> None:
    """Read the ``ADGEN_*`` settings and schedule training until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = stop_on_signals()
    try:
        run_trainer(get_settings(), stop)
    except AdgenError as exc:
        logger.error("trainer service cannot run: %s", exc)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
