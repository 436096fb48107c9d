"""``adgen serve``: the HTTP API under uvicorn; the embedded broker when none is configured."""

from __future__ import annotations

import logging
import signal
from contextlib import ExitStack
from types import FrameType
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError

from adgen.db.engine import make_engine
from adgen.db.migrate import current_revision
from adgen.errors import ConfigError
from adgen.settings import Settings, get_settings

logger = logging.getLogger(__name__)


def check_schema(settings: Settings) -> None:
    """ConfigError when the database was never migrated; only a warning when unreachable
    (the API then starts degraded and loads posteriors once the database answers)."""
    engine = make_engine(settings.db_url)
    try:
        revision = current_revision(engine)
    except OperationalError as exc:
        logger.warning("database not reachable at start-up, starting degraded: %s", exc)
        return
    finally:
        engine.dispose()
    if revision is None:
        raise ConfigError("the database has no adgen schema: run `adgen db upgrade` first")


def run(
    settings: Settings, host: str | None = None, port: int | None = None, access_log: bool = False
) -> None:
    """Serve the API until interrupted, starting (and then stopping) the embedded broker
    when ``ADGEN_KAFKA_BOOTSTRAP`` is unset."""
    import uvicorn

    from adgen.api import create_app
    from adgen.bus.broker import EmbeddedBroker

    settings.admin_token_value()  # refuse default secrets before starting anything
    settings.token_secret_value()
    check_schema(settings)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again with the handler
    # that was there before: the default one would kill the process before the embedded
    # broker is stopped, leaving it running. This one unwinds the stack instead.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        bootstrap = settings.kafka_bootstrap
        if bootstrap is None:
            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap
            logger.info("no ADGEN_KAFKA_BOOTSTRAP: embedded broker on %s", bootstrap)
        app = create_app(settings, kafka_bootstrap=bootstrap)
        uvicorn.run(
            app,
            host=host or settings.api_host,
            port=port or settings.api_port,
            access_log=access_log,
            log_config=None,  # keep the CLI's logging set-up
        )


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default ADGEN_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ADGEN_API_PORT).")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Serve the allocation API (FastAPI under uvicorn)."""
    run(get_settings(), host=host, port=port, access_log=access_log)
