"""Ingest (a real ``services.ingest`` process) SIGKILLed three times by pid while 50,000
events flow into the broker; each time a new process takes over."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from ingest import make_events

from adgen.bus.broker import EmbeddedBroker
from adgen.bus.producer import EventProducer
from adgen.bus.topics import ensure_topic
from faultlib.harness import (
    adgen_env,
    make_campaign,
    result_from,
    shared_pg_database,
    start_ingest,
    stored_at_least,
    wait_until,
)
from faultlib.result import FaultResult

NAME = "ingest_kill"
TOPIC = "adgen.events"
KILLS = 3


def run(workdir: Path, quick: bool, seed: int) -> FaultResult:
    """Kill ingest at a quarter, half and three quarters of the stream; count what landed."""
    n = 6_000 if quick else 50_000
    with shared_pg_database() as url, EmbeddedBroker() as broker:
        campaign, variants = make_campaign(url)
        events = make_events(n, campaign, variants, random.Random(seed))
        ensure_topic(broker.bootstrap, TOPIC, 4)
        env = adgen_env(workdir, url, broker.bootstrap, ADGEN_INGEST_BATCH_SIZE="500")

        def flow() -> None:  # the stream keeps arriving while ingest dies and restarts
            with EventProducer(broker.bootstrap, TOPIC) as producer:
                for i, event in enumerate(events):
                    producer.send(event)
                    if i % 500 == 499:
                        producer.flush()
                        threading.Event().wait(0.05)

        producer = threading.Thread(target=flow, name="fault-producer")
        producer.start()
        ingest = start_ingest(env, workdir)
        killed: list[int] = []
        try:
            for k in range(1, KILLS + 1):
                wait_until(stored_at_least(url, n * k // (KILLS + 1)), 180,
                           f"ingest to store {k}/{KILLS + 1} of the stream")
                ingest.kill()
                killed.append(ingest.pid)
                ingest = start_ingest(env, workdir)
            producer.join()
            wait_until(stored_at_least(url, n), 240, "ingest to store every event")
        finally:
            ingest.stop()
            producer.join()
        return result_from(NAME, url, n, 0, f"{len(killed)} SIGKILLs of pids {killed}")
