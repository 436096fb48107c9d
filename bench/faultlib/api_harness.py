"""The real API for fault scenarios: a throwaway PostgreSQL database (migrated), an embedded
broker, the app served by uvicorn in a thread, and an ingest consumer to drain the topic."""

from __future__ import annotations

import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import uvicorn
from _fixtures import throwaway_database
from sqlalchemy import Engine

from adgen.api import create_app
from adgen.bus.broker import EmbeddedBroker
from adgen.db.engine import make_engine, session_factory
from adgen.ingest.consumer import IngestConsumer
from adgen.ingest.stats import IngestStats
from adgen.settings import Settings

BRIEF = {"name": "Fault drill", "product": "Trail running shoes", "brand": "Acme",
         "audience": "weekend trail runners", "benefits": ["grippy outsole"]}
TEXTS = ["Acme trail shoes grip wet rock", "Dry feet on muddy trails with Acme",
         "Weekend trails feel lighter in Acme"]


@dataclass(frozen=True)
class ApiStack:
    """A running API and what it runs on."""

    base_url: str
    settings: Settings
    engine: Engine
    admin: dict[str, str]

    def campaign(self) -> tuple[int, list[int]]:
        """Create a campaign with three variants through the API; its id and variant ids."""
        r = requests.post(f"{self.base_url}/v1/campaigns", json=BRIEF, headers=self.admin,
                          timeout=30)
        r.raise_for_status()
        cid = int(r.json()["id"])
        r = requests.post(f"{self.base_url}/v1/campaigns/{cid}/variants",
                          json={"texts": TEXTS}, headers=self.admin, timeout=30)
        r.raise_for_status()
        return cid, [int(v["id"]) for v in r.json()]

    def wait_servable(self, campaign_id: int, timeout_s: float = 30.0) -> None:
        """Wait until ``/v1/allocate`` serves ``campaign_id`` (posteriors refreshed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            r = requests.post(f"{self.base_url}/v1/allocate", json={"campaign_id": campaign_id},
                              timeout=10)
            if r.status_code == 200:
                return
            time.sleep(0.2)
        raise TimeoutError(f"campaign {campaign_id} not servable after {timeout_s} s")

    def ingest(self, idle_s: float = 3.0) -> IngestStats:
        """Drain the events topic into the database with a real consumer."""
        with IngestConsumer(self.settings, session_factory(self.engine)) as consumer:
            return consumer.drain(idle_s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_stack(workdir: Path, **overrides: Any) -> Iterator[ApiStack]:
    """Start everything; stop it all on exit. ``overrides`` are extra settings."""
    token = secrets.token_urlsafe(32)
    with throwaway_database(prefix="adgen_fault") as url, EmbeddedBroker() as broker:
        settings = Settings(
            var_dir=workdir / "var", database_url=url, kafka_bootstrap=broker.bootstrap,
            events_topic=f"fault.{uuid.uuid4().hex[:8]}", consumer_group="fault-ingest",
            admin_token=token, token_secret=secrets.token_urlsafe(32),
            base_model=str(workdir / "no-model"), refresh_interval_s=0.2,
            ingest_session_timeout_ms=6000, ingest_max_poll_interval_ms=3000, **overrides,
        )
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_config=None,
            access_log=False,
        ))
        thread = threading.Thread(target=server.run, name="fault-api", daemon=True)
        thread.start()
        engine = make_engine(url)
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("the API did not start")
                time.sleep(0.05)
            yield ApiStack(f"http://127.0.0.1:{port}", settings, engine,
                           {"Authorization": f"Bearer {token}"})
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            engine.dispose()
