"""The FastAPI app factory: wiring of settings, database, allocator, producer and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI

from adgen.allocator import Allocator
from adgen.api import console, errors
from adgen.api.limits import RequestLimits
from adgen.api.routes import allocate, campaigns, cells, events, generation, health, operator
from adgen.api.routes import models as models_routes
from adgen.api.schemas import ERROR_RESPONSES
from adgen.api.shipper import EventShipper
from adgen.api.state import AppState
from adgen.bus.producer import EventProducer
from adgen.bus.spool import Spool
from adgen.bus.topics import ensure_topic
from adgen.db.engine import make_engine, session_factory
from adgen.errors import ConfigError
from adgen.metrics import ApiMetrics
from adgen.settings import Settings
from adgen.tokens import Signer

logger = logging.getLogger(__name__)

#: How long the shipper thread waits for room in the producer's buffer.
PRODUCER_MAX_BLOCK_MS = 10_000
#: Impressions wait up to this long to be batched: fewer, larger produce requests cost
#: the sender thread (and so the event loop, which shares the GIL) far less per event.
PRODUCER_LINGER_MS = 50


def create_app(
    settings: Settings,
    *,
    kafka_bootstrap: str | None = None,
    rng: np.random.Generator | None = None,
) -> FastAPI:
    """The adgen API for ``settings``.

    ``kafka_bootstrap`` overrides ``settings.kafka_bootstrap`` (``adgen serve`` passes the
    embedded broker's address). Raises ConfigError for default secrets outside the
    embedded mode, or when there is no broker to send events to.
    """
    admin_token = settings.admin_token_value()
    signer = Signer(settings.token_secret_value())
    bootstrap = kafka_bootstrap or settings.kafka_bootstrap
    if not bootstrap:
        raise ConfigError(
            "no Kafka broker: set ADGEN_KAFKA_BOOTSTRAP, or start the API with `adgen serve`, "
            "which starts the embedded broker"
        )
    # PostgreSQL: fail fast instead of hanging while the server is unreachable
    pg = settings.db_url.startswith("postgresql")
    engine = make_engine(settings.db_url, connect_args={"connect_timeout": 5}) if pg else (
        make_engine(settings.db_url)
    )
    sessions = session_factory(engine)
    allocator = Allocator(sessions, settings, rng if rng is not None else np.random.default_rng())
    metrics = ApiMetrics()
    state = AppState(
        settings=settings,
        sessions=sessions,
        allocator=allocator,
        metrics=metrics,
        admin_token=admin_token,
        signer=signer,
    )

    def connect() -> EventProducer:
        # the topic again: a restarted embedded broker has forgotten it
        ensure_topic(bootstrap, settings.events_topic, settings.topic_partitions)
        return EventProducer(
            bootstrap,
            settings.events_topic,
            max_block_ms=PRODUCER_MAX_BLOCK_MS,
            linger_ms=PRODUCER_LINGER_MS,
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        spool = Spool(
            settings.spool_path,
            max_bytes=settings.spool_max_bytes,
            fsync_batch=settings.spool_fsync_batch,
        )
        state.shipper = EventShipper(
            connect,
            spool,
            producer=connect(),
            delivery_timeout_s=settings.delivery_timeout_s,
            on_failure=metrics.errors["bus"].inc,
        )
        try:
            allocator.start()
            logger.info(
                "api ready: database %s, broker %s, topic %s",
                engine.url.render_as_string(hide_password=True), bootstrap, settings.events_topic,
            )
            yield
        finally:
            allocator.stop()
            shipper, state.shipper = state.shipper, None
            shipper.close()
            engine.dispose()

    app = FastAPI(
        title="adgen",
        summary="Ad variants allocated by Thompson sampling; clicks and conversions to Kafka.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by the console from vendored assets (no CDN)
        redoc_url=None,
    )
    app.state.adgen = state
    metrics.track(allocator, lambda: state.shipper)
    metrics.track_srm(sessions)
    errors.install(app)
    for router in (allocate.router, events.router, campaigns.router, health.router,
                   models_routes.router, generation.router, operator.router, cells.router):
        app.include_router(router, responses=ERROR_RESPONSES)
    console.mount(app, admin_token, settings.token_secret_value())
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.api_max_body_bytes,
        on_refused=metrics.errors["validation"].inc,
    )
    return app
