"""1% malformed messages mixed into the stream: every one lands in ``dead_letters`` with a
reason, every valid event is stored, nothing is lost."""

from __future__ import annotations

import random
from pathlib import Path

from ingest import make_events

from adgen.bus.broker import EmbeddedBroker
from adgen.bus.producer import EventProducer
from adgen.bus.topics import ensure_topic
from adgen.events import Event, encode_event
from faultlib.harness import (
    adgen_env,
    counts,
    make_campaign,
    shared_pg_database,
    start_ingest,
    wait_until,
)
from faultlib.result import FaultResult

NAME = "malformed"
TOPIC = "adgen.events"


def _malformed(i: int, template: Event) -> bytes:
    """Ten kinds of bad message, in turn."""
    good = encode_event(template)
    kinds = [
        b"not json at all %d" % i,
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"type": "impression"}',
        good.replace(b'"impression"', b'"teleport"', 1),
        encode_event(template.model_copy(update={"event_id": f"bad-{i}",
                                                 "variant_id": 900_000 + i})),
        good.replace(b'"campaign_id":', b'"campaign_id":"x', 1),
        good[: len(good) // 2],
        encode_event(template.model_copy(update={"event_id": f"bad-{i}",
                                                 "campaign_id": 900_000 + i})),
    ]
    return kinds[i % len(kinds)]


def run(workdir: Path, quick: bool, seed: int) -> FaultResult:
    """Produce the stream with 1% bad messages, let ingest take it, count."""
    n = 5_000 if quick else 50_000
    rng = random.Random(seed)
    with shared_pg_database() as url, EmbeddedBroker() as broker:
        campaign, variants = make_campaign(url)
        events = make_events(n, campaign, variants, rng)
        bad = n // 100
        ensure_topic(broker.bootstrap, TOPIC, 4)
        with EventProducer(broker.bootstrap, TOPIC) as producer:
            positions = set(rng.sample(range(n), bad))
            b = 0
            for i, event in enumerate(events):
                if i in positions:
                    producer.send_raw(b"bad-%d" % b, _malformed(b, events[0]))
                    b += 1
                producer.send(event)
        ingest = start_ingest(adgen_env(workdir, url, broker.bootstrap), workdir)
        try:
            wait_until(lambda: (lambda c: c.stored + c.dead_lettered >= n + bad)(counts(url)),
                       180, "ingest to store or dead-letter every message")
        finally:
            ingest.stop()
        c = counts(url)
    # lost: valid events not stored, plus bad messages not kept as dead letters
    lost = max(0, n - c.stored) + max(0, bad - c.dead_lettered)
    return FaultResult(NAME, n + bad, c.stored, lost, c.double_counted, c.dead_lettered, 0,
                       f"{bad} malformed messages of 10 kinds among {n} events")
