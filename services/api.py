"""The API service: FastAPI under uvicorn until SIGTERM (``python -m services.api``)."""

from __future__ import annotations

import logging

from adgen.cli import serve_cmd
from adgen.errors import AdgenError
from adgen.settings import get_settings

logger = logging.getLogger("services.api")


def main() -> None:
    """Read the ``ADGEN_*`` settings and serve the API."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        serve_cmd.run(get_settings())
    except AdgenError as exc:
        logger.error("api service cannot run: %s", exc)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
