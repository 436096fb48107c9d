"""What counts in arm_stats: one click and one conversion per impression, never a click
before its impression (held, then counted or dead-lettered), conversion values bounded.
Real databases (PostgreSQL and SQLite); the pure rules on their own first."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adgen.brief import Brief
from adgen.bus.producer import EventProducer
from adgen.bus.topics import ensure_topic
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.events import decode_event, encode_event, make_event
from adgen.ingest.batch import RawMessage, decode_batch
from adgen.ingest.consumer import IngestConsumer
from adgen.ingest.counting import Candidate, Known, classify
from adgen.ingest.stats import IngestStats
from adgen.ingest.store import VariantDirectory, expire_held, store_batch
from adgen.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _c(ref: int, kind: str, imp: str = "i", variant: int = 1, eid: str | None = None) -> Candidate:
    return Candidate(ref, eid or f"e{ref}", imp, kind, variant)


def test_classify_counts_one_of_each_type_per_impression() -> None:
    new = [_c(0, "click"), _c(1, "impression"), _c(2, "click"), _c(3, "conversion"),
           _c(4, "impression"), _c(5, "click", variant=2), _c(6, "click", imp="j")]
    d = classify(new, [])
    assert d.new == ["counted", "counted", "repeat", "counted", "repeat", None, "held"]
    assert "variant 2" in d.refused[5] and "variant 1" in d.refused[5]


def test_classify_promotes_held_events_and_skips_redelivered_ones() -> None:
    held = Known(_c(40, "click", eid="old"), "held")
    d = classify([_c(0, "click", eid="old"), _c(1, "impression"), _c(2, "click")], [held])
    assert d.new == ["held", "counted", "repeat"]  # "old" is a redelivery: the insert skips it
    assert d.stored == {40: "counted"}
    counted = Known(_c(41, "impression", variant=3), "counted")
    wrong = Known(_c(42, "click", imp="k"), "held")
    d = classify([_c(0, "click", variant=3), _c(1, "impression", imp="k", variant=2)],
                 [counted, wrong])
    assert d.new == ["counted", "counted"]
    assert d.stored == {42: "orphan"} and "variant 1" in d.stored_reasons[42]


def test_classify_never_counts_twice_or_before_the_impression() -> None:
    """Random streams, split into random batches: whatever the order, per impression at
    most one counted event of each type, and clicks/conversions only of its variant."""
    rng = random.Random(7)
    for _ in range(200):
        stream = [(rng.choice("abc"), rng.choice(("impression", "click", "conversion")),
                   rng.choice((1, 1, 1, 2))) for _ in range(rng.randrange(1, 30))]
        stored: dict[int, tuple[Candidate, str]] = {}  # row id -> (event, status)
        ref = 0
        while ref < len(stream):
            end = rng.randrange(ref + 1, len(stream) + 1)
            known = [Known(e, st) for e, st in stored.values() if st in ("counted", "held")]
            batch = [_c(i - ref, kind, imp, variant, eid=f"e{i}")
                     for i, (imp, kind, variant) in enumerate(stream[ref:end], start=ref)]
            d = classify(batch, known)
            for row_id, status in d.stored.items():
                stored[row_id] = (stored[row_id][0], status)
            for c, new_status in zip(batch, d.new, strict=True):
                if new_status is not None:
                    row_id = 1000 + ref + c.ref
                    stored[row_id] = (Candidate(row_id, c.event_id, c.impression_id, c.type,
                                                c.variant_id), new_status)
            ref = end
        counted = [e for e, st in stored.values() if st == "counted"]
        keys = [(e.impression_id, e.type) for e in counted]
        assert len(keys) == len(set(keys)), stream
        shown = {e.impression_id: e.variant_id for e in counted if e.type == "impression"}
        for e in counted:
            assert shown.get(e.impression_id) == e.variant_id, stream
        held = [e for e, st in stored.values() if st == "held"]
        assert all(e.impression_id not in shown for e in held), stream


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    eng = make_engine(str(url))
    yield eng
    eng.dispose()


class Pipe:
    """Feeds events to ``store_batch`` as numbered messages of one partition."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self.directory = VariantDirectory()
        self.offset = 0
        with transaction(self.sessions) as s:
            campaign = create_campaign(s, Brief(name="c", product="p", brand="b", audience="a"))
            self.campaign = campaign.id
            self.variants = [v.id for v in add_variants(s, campaign.id, ["one", "two"])]

    def event(self, kind: str, imp: str, eid: str, variant: int = 0, **kw: Any) -> bytes:
        extra = {"propensity": 0.5} if kind == "impression" else {}
        return encode_event(make_event(
            type=kind, event_id=eid, impression_id=imp, campaign_id=self.campaign,
            variant_id=self.variants[variant], event_time=T0, **extra, **kw))

    def send(self, *payloads: bytes, max_value: float = 1e9) -> IngestStats:
        msgs = []
        for p in payloads:
            msgs.append(RawMessage("t", 0, self.offset, b"k", p))
            self.offset += 1
        with transaction(self.sessions) as s:
            return store_batch(s, decode_batch(msgs), self.directory, max_value=max_value)

    def arm(self, variant: int = 0) -> tuple[int, int, int, float]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT impressions, clicks, conversions, conversion_value FROM arm_stats "
                "WHERE variant_id = :v"), {"v": self.variants[variant]}).one_or_none()
        return tuple(row) if row else (0, 0, 0, 0.0)  # type: ignore[return-value]

    def statuses(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT event_id, count_status FROM events")).all())

    def dead(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.text("SELECT reason FROM dead_letters ORDER BY id")))


def test_fifty_clicks_on_one_impression_count_once(engine: Engine) -> None:
    p = Pipe(engine)
    p.send(p.event("impression", "i1", "imp"))
    clicks = [p.event("click", "i1", f"c{n}") for n in range(50)]
    stats = p.send(*clicks[:25])
    p.send(*clicks[25:], *clicks[:10])  # redelivered ones change nothing
    assert stats.repeats == 24
    assert p.arm() == (1, 1, 0, 0.0)
    statuses = p.statuses()
    assert len(statuses) == 51
    assert sorted(statuses.values()).count("repeat") == 49


def test_click_before_its_impression_is_held_then_counted(engine: Engine) -> None:
    p = Pipe(engine)
    stats = p.send(p.event("click", "i2", "early"), p.event("conversion", "i2", "cv", value=5.0))
    assert stats.held == 2 and p.arm() == (0, 0, 0, 0.0)
    assert set(p.statuses().values()) == {"held"}
    p.send(p.event("click", "i2", "early"))  # redelivered while held
    p.send(p.event("impression", "i2", "imp2"), p.event("click", "i2", "late"))
    assert p.arm() == (1, 1, 1, 5.0)
    assert p.statuses() == {"early": "counted", "cv": "counted", "imp2": "counted",
                            "late": "repeat"}


def test_orphans_are_dead_lettered_after_the_grace_period(engine: Engine) -> None:
    p = Pipe(engine)
    p.send(p.event("click", "gone", "orphan"))
    with transaction(p.sessions) as s:
        assert expire_held(s, 3600, "t").orphans == 0  # still within its grace period
    with engine.begin() as conn:  # age it
        conn.execute(sa.text("UPDATE events SET received_time = :t"), {"t": T0})
    with transaction(p.sessions) as s:
        assert expire_held(s, 60, "t").orphans == 1
    assert p.statuses() == {"orphan": "orphan"}
    assert len(p.dead()) == 1 and "impression never reached ingest" in p.dead()[0]
    p.send(p.event("impression", "gone", "imp-late"))
    assert p.arm() == (1, 0, 0, 0.0)  # the orphan stays uncounted


def test_click_naming_another_variant_is_refused(engine: Engine) -> None:
    p = Pipe(engine)
    p.send(p.event("impression", "i3", "imp3", variant=0))
    stats = p.send(p.event("click", "i3", "forged", variant=1))
    assert stats.dead_letters == 1 and "not counted" in p.dead()[0]
    assert p.arm(0) == (1, 0, 0, 0.0) and p.arm(1) == (0, 0, 0, 0.0)


def test_conversion_values_are_bounded(engine: Engine) -> None:
    p = Pipe(engine)
    p.send(p.event("impression", "i4", "imp4"))
    huge = [p.event("conversion", "i4", f"big{n}", value=1.7e308) for n in range(3)]
    stats = p.send(*huge, max_value=1e9)
    assert stats.dead_letters == 3 and "above the maximum" in p.dead()[0]
    p.send(p.event("conversion", "i4", "ok", value=2.5))
    assert p.arm() == (1, 0, 1, 2.5)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT SUM(conversion_value) FROM campaign_daily_totals"))
        assert math.isclose(total.scalar_one(), 2.5)


def test_consumer_dead_letters_orphans_after_the_grace_period(settings: Settings) -> None:
    """The real consumer on the real broker: an orphan click is held, then dead-lettered by
    the consumer's own sweep while it idles; its impression's sibling counts normally."""
    settings = settings.model_copy(update={"ingest_hold_grace_s": 0.5})
    engine = make_engine(settings.db_url)
    try:
        p = Pipe(engine)
        ensure_topic(settings.kafka_bootstrap or "", settings.events_topic, 4)
        with EventProducer(settings.kafka_bootstrap or "", settings.events_topic) as producer:
            for payload in (p.event("impression", "seen", "imp"), p.event("click", "seen", "c1"),
                            p.event("click", "never", "orphan")):
                producer.send(decode_event(payload))
        with IngestConsumer(settings, p.sessions) as consumer:
            stats = consumer.drain(idle_s=3.0)
        assert stats.orphans == 1
        assert p.statuses() == {"imp": "counted", "c1": "counted", "orphan": "orphan"}
        assert p.arm() == (1, 1, 0, 0.0)
        assert "never reached ingest within 0.5 s" in p.dead()[0]
    finally:
        engine.dispose()
