"""The HTTP API against the real PostgreSQL, the real broker and the real ingest consumer."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import ADMIN, state
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from adgen.api import create_app
from adgen.db.models import ArmStats, Event, Variant
from adgen.errors import ConfigError
from adgen.ingest.consumer import IngestConsumer
from adgen.settings import Settings
from adgen.tokens import TokenClaims, issue

BRIEF = {
    "name": "Trail shoes spring",
    "product": "Lightweight trail running shoes",
    "benefits": ["grippy outsole", "waterproof"],
    "brand": "Acme",
    "audience": "weekend trail runners",
}
TEXTS = [
    "Acme trail shoes: grip that holds on wet rock",
    "Run muddy trails with dry feet in Acme",
    "Weekend trails feel lighter in Acme shoes",
]



def _campaign(client: TestClient, app: FastAPI, **brief: Any) -> tuple[int, list[int]]:
    r = client.post("/v1/campaigns", json={**BRIEF, **brief}, headers=ADMIN)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = client.post(f"/v1/campaigns/{cid}/variants", json={"texts": TEXTS}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert state(app).allocator.refresh()
    return cid, [v["id"] for v in r.json()]


def _drain(settings: Settings, app: FastAPI) -> None:
    shipper = state(app).shipper
    assert shipper is not None
    shipper.flush(timeout_s=10)
    with IngestConsumer(settings, state(app).sessions) as consumer:
        consumer.drain(idle_s=1.0)


def test_allocate_click_ingest_moves_the_posterior_and_replays_count_once(
    client: TestClient, app: FastAPI, settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    cid, variant_ids = _campaign(client, app)
    served: dict[int, int] = {}
    allocations = []
    for _ in range(30):
        r = client.post("/v1/allocate", json={"campaign_id": cid, "context": {"device": "ios"}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["variant_id"] in variant_ids
        assert 0 < body["propensity"] <= 1
        assert body["text"] in TEXTS
        served[body["variant_id"]] = served.get(body["variant_id"], 0) + 1
        allocations.append(body)
    # new arms: Thompson sampling over identical posteriors is exactly uniform
    assert all(a["propensity"] == pytest.approx(1 / 3) for a in allocations)

    clicked = allocations[0]
    first = client.post("/v1/events", json={"type": "click", "token": clicked["token"]})
    replay = client.post("/v1/events", json={"type": "click", "token": clicked["token"]})
    assert first.status_code == replay.status_code == 202
    assert first.json()["event_id"] == replay.json()["event_id"]
    conversion = client.post(
        "/v1/events",
        json={"type": "conversion", "token": clicked["token"], "value": 19.5, "event_id": "o-1"},
    )
    assert conversion.status_code == 202, conversion.text

    before = {a.variant_id: a for a in state(app).allocator.arms(cid)}
    _drain(settings, app)

    with pg_sessions() as session:
        stats = {s.variant_id: s for s in session.scalars(select(ArmStats))}
        kinds = sorted(session.scalars(
            select(Event.type).where(Event.impression_id == clicked["impression_id"])
        ))
    for vid, count in served.items():
        assert stats[vid].impressions == count
    assert stats[clicked["variant_id"]].clicks == 1  # the replayed click counted once
    assert stats[clicked["variant_id"]].conversions == 1
    assert kinds == ["click", "conversion", "impression"]

    assert state(app).allocator.refresh()
    after = {a.variant_id: a for a in state(app).allocator.arms(cid)}
    vid = clicked["variant_id"]
    assert (before[vid].successes, before[vid].trials) == (0, 0)
    assert (after[vid].successes, after[vid].trials) == (1, served[vid])
    variants = {v["id"]: v for v in client.get(f"/v1/campaigns/{cid}/variants").json()}
    assert variants[vid]["clicks"] == 1
    assert variants[vid]["posterior_mean"] == pytest.approx(2 / (2 + served[vid]))
    assert variants[vid]["ci95_low"] < variants[vid]["posterior_mean"] < variants[vid]["ci95_high"]

    metrics = client.get("/metrics").text
    assert "adgen_allocations_total 30.0" in metrics
    assert 'adgen_events_total{type="click"} 2.0' in metrics
    assert "adgen_posterior_refresh_age_seconds" in metrics


def test_bad_tokens_are_refused_with_401_and_nothing_is_sent(
    client: TestClient, app: FastAPI, settings: Settings
) -> None:
    cid, _ = _campaign(client, app)
    token = client.post("/v1/allocate", json={"campaign_id": cid}).json()["token"]
    parts = token.split(".")
    parts[3] = str(int(parts[3]) + 1)  # claim another variant
    tampered = ".".join(parts)
    expired = issue(
        settings.token_secret_value(), TokenClaims("a" * 32, cid, 1, int(time.time()) - 1)
    )
    foreign = issue(b"another-key", TokenClaims("b" * 32, cid, 1, int(time.time()) + 60))
    for bad, reason in [(tampered, "bad signature"), (expired, "expired"),
                        (foreign, "bad signature"), ("nonsense", "malformed")]:
        r = client.post("/v1/events", json={"type": "click", "token": bad})
        assert r.status_code == 401, r.text
        assert reason in r.json()["detail"]
    assert 'adgen_events_total{type="click"} 0.0' in client.get("/metrics").text
    assert 'adgen_errors_total{kind="token"} 4.0' in client.get("/metrics").text


def test_admin_endpoints_need_the_admin_token(client: TestClient, app: FastAPI) -> None:
    cid, _ = _campaign(client, app)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        r = client.post("/v1/campaigns", json=BRIEF, headers=headers)
        assert r.status_code == 401
        assert "admin token" in r.json()["detail"]
        r = client.post(f"/v1/campaigns/{cid}/variants", json={"texts": ["x"]}, headers=headers)
        assert r.status_code == 401
    assert len(client.get(f"/v1/campaigns/{cid}").json()["variants"]) == len(TEXTS)


BAD_REQUESTS: list[tuple[str, str, Any, str]] = [
    ("post", "/v1/allocate", {"campaign_id": "seven"}, "campaign_id"),
    ("post", "/v1/allocate", {"campaign_id": 0}, "greater than or equal to 1"),
    ("post", "/v1/allocate", {"campaign_id": 2**40}, "less than or equal"),
    ("post", "/v1/allocate", {"campaign_id": 1, "extra": 1}, "extra"),
    ("post", "/v1/allocate", {"campaign_id": 1, "context": {"k": [1]}}, "context"),
    ("post", "/v1/allocate", {"campaign_id": 1, "context": {"k": "x" * 257}}, "context"),
    ("post", "/v1/allocate", None, "Field required"),
    ("post", "/v1/events", {"type": "view", "token": "t"}, "type"),
    ("post", "/v1/events", {"type": "click", "token": "t", "value": 3}, "only conversions"),
    ("post", "/v1/events", {"type": "conversion", "token": "t", "value": -1}, "value"),
    ("post", "/v1/events", {"type": "click", "token": "t", "event_id": "a b"}, "event_id"),
    ("post", "/v1/events", {"type": "click", "token": "t" * 300}, "token"),
    ("post", "/v1/campaigns", {**BRIEF, "locale": "fr"}, "locale"),
    ("post", "/v1/campaigns", {**BRIEF, "name": ""}, "name"),
    ("post", "/v1/campaigns", {**BRIEF, "brand": "Ac\x00me"}, "NUL"),
    ("post", "/v1/campaigns", {**BRIEF, "colour": "red"}, "colour"),
    ("post", "/v1/campaigns/1/variants", {"texts": []}, "texts"),
    ("post", "/v1/campaigns/1/variants", {"texts": ["ok", "x\x00"]}, "NUL"),
    ("get", "/v1/campaigns/99999999999", None, "less than or equal"),
    ("get", "/v1/campaigns/abc", None, "campaign_id"),
    ("get", "/v1/campaigns/1/variants?status=gone", None, "status"),
    ("post", "/v1/events", {"type": "conversion", "token": "t", "value": 1e10}, "maximum"),
    ("post", "/v1/campaigns", {**BRIEF, "forbidden_words": [""]}, "forbidden_words"),
]


def test_bad_requests_are_422_with_a_message(client: TestClient) -> None:
    for method, path, body, fragment in BAD_REQUESTS:
        r = client.request(method.upper(), path, json=body, headers=ADMIN)
        assert r.status_code == 422, (path, body, r.text)
        assert fragment in r.json()["detail"], (path, body, r.text)
    assert 'adgen_errors_total{kind="validation"} 23.0' in client.get("/metrics").text


ODD_BODIES: list[bytes] = [
    b"", b"null", b"[]", b"[1, 2]", b'"text"', b"12", b"{}", b'{"campaign_id": null}',
    b'{"campaign_id": 1.5}', b'{"campaign_id": "1"}', b'{"campaign_id": 1e400}',
    b'{"texts": ["\\ud800"]}', b'{"name": "\\udfff"}', b'{"type": "click", "token": 5}',
    b'{"type": "click", "token": "v1.' + b"a" * 32 + b'.1.1.9999999999.' + b"A" * 43 + b'"}',
    b"\xff\xfe", b'{"campaign_id": 1, "context": {"' + b"k" * 100 + b'": 1}}',
]


def test_no_input_produces_a_500(client: TestClient, app: FastAPI) -> None:
    cid, _ = _campaign(client, app)
    paths = ["/v1/allocate", "/v1/events", "/v1/campaigns", f"/v1/campaigns/{cid}/variants"]
    json_type = {"content-type": "application/json", **ADMIN}
    for path in paths:
        for raw in ODD_BODIES:
            r = client.post(path, content=raw, headers=json_type)
            assert 400 <= r.status_code < 500, (path, raw, r.status_code, r.text)
            assert r.json()["detail"], (path, raw)
    texts = [{"texts": ["ok \ud800"]}, {**BRIEF, "brand": "Ac\udfffme"}]
    for path, body in zip(paths[3:1:-1], texts, strict=True):
        r = client.post(path, content=json.dumps(body).encode(), headers=json_type)
        assert r.status_code == 422 and "unicode" in r.json()["detail"], r.text


def test_malformed_json_and_nan_are_422(client: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    r = client.post("/v1/allocate", content=b"{not json", headers=json_type)
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    r = client.post(
        "/v1/events",
        content=b'{"type": "conversion", "token": "t", "value": NaN}',
        headers=json_type,
    )
    assert r.status_code == 422 and "value" in r.json()["detail"]


def test_unknown_empty_and_paused_campaigns(
    client: TestClient, app: FastAPI, pg_sessions: sessionmaker[Session]
) -> None:
    r = client.post("/v1/campaigns", json=BRIEF, headers=ADMIN)
    empty = r.json()["id"]
    state(app).allocator.refresh()
    assert client.post("/v1/allocate", json={"campaign_id": 424242}).status_code == 404
    assert client.get("/v1/campaigns/424242").status_code == 404
    r = client.post("/v1/allocate", json={"campaign_id": empty})
    assert r.status_code == 409 and "no active variants" in r.json()["detail"]
    cid, variant_ids = _campaign(client, app)
    with pg_sessions.begin() as session:
        session.execute(
            sa.update(Variant).where(Variant.id == variant_ids[0]).values(status="paused")
        )
    state(app).allocator.refresh()
    served = {client.post("/v1/allocate", json={"campaign_id": cid}).json()["variant_id"]
              for _ in range(40)}
    assert served == set(variant_ids[1:])
    paused = client.get(f"/v1/campaigns/{cid}/variants", params={"status": "paused"}).json()
    assert [v["id"] for v in paused] == [variant_ids[0]]


def test_guardrails_refuse_hand_written_variants_and_store_none(
    client: TestClient, app: FastAPI
) -> None:
    cid, _ = _campaign(client, app, forbidden_words=["cheap"])
    texts = ["Acme trail shoes for every season", "Cheap shoes, cheap thrills", ""]
    r = client.post(f"/v1/campaigns/{cid}/variants", json={"texts": texts}, headers=ADMIN)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "texts" in detail
    r = client.post(f"/v1/campaigns/{cid}/variants", json={"texts": texts[:2]}, headers=ADMIN)
    assert r.status_code == 422 and "nothing was stored" in r.json()["detail"]
    assert "texts[1]" in r.json()["detail"]
    assert len(client.get(f"/v1/campaigns/{cid}/variants").json()) == len(TEXTS)


def test_database_unreachable_keeps_allocating_and_readyz_says_degraded(
    client: TestClient, app: FastAPI, pg_url: str
) -> None:
    cid, variant_ids = _campaign(client, app)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    name = make_url(pg_url).database
    admin_url = make_url(pg_url).set(database="postgres")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            ), {"n": name})
        assert not state(app).allocator.refresh()
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["status"] == "degraded"
        assert "database unreachable" in r.json()["reasons"][0]
        for _ in range(20):
            r = client.post("/v1/allocate", json={"campaign_id": cid})
            assert r.status_code == 200 and r.json()["variant_id"] in variant_ids
        r = client.get(f"/v1/campaigns/{cid}")
        assert r.status_code == 503 and "database" in r.json()["detail"]
        assert "adgen_degraded 1.0" in client.get("/metrics").text
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    assert state(app).allocator.refresh()
    assert client.get("/readyz").json()["status"] == "ready"


def test_a_database_down_at_start_up_means_unavailable_not_a_crash(
    settings: Settings, pg_url: str
) -> None:
    missing = make_url(pg_url).set(database="adgen_no_such_database")
    down = settings.model_copy(
        update={"database_url": missing.render_as_string(hide_password=False)}
    )
    with TestClient(create_app(down)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert "no posteriors loaded yet" in r.json()["reasons"]
        r = client.post("/v1/allocate", json={"campaign_id": 1})
        assert r.status_code == 503 and "no posteriors loaded" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200


def test_health_and_metrics_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    text = client.get("/metrics").text
    for name in ("adgen_allocations_total", "adgen_events_total", "adgen_errors_total",
                 "adgen_posterior_refresh_age_seconds", "adgen_degraded",
                 "adgen_events_pending"):
        assert name in text


def test_default_secrets_are_refused_outside_the_embedded_mode() -> None:
    settings = Settings(database_url="postgresql://u@127.0.0.1/db", kafka_bootstrap="127.0.0.1:9")
    with pytest.raises(ConfigError, match="ADGEN_ADMIN_TOKEN"):
        create_app(settings)
    with pytest.raises(ConfigError, match="ADGEN_TOKEN_SECRET"):
        create_app(settings.model_copy(update={"admin_token": SecretStr("a" * 32)}))


def test_nul_characters_and_large_bodies_are_refused(client: TestClient) -> None:
    r = client.get("/v1/models?base_model=%00")
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    r = client.post("/v1/allocate", content=b'{"campaign_id": 1, "context": {"k": "a\\u0000"}}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    big = {"campaign_id": 1, "context": {"k": "x" * 70_000}}
    r = client.post("/v1/allocate", json=big)
    assert r.status_code == 413 and "ADGEN_API_MAX_BODY_BYTES" in r.json()["detail"]
    assert client.get("/healthz").status_code == 200
    assert 'adgen_errors_total{kind="validation"} 3.0' in client.get("/metrics").text


def test_openapi_declares_errors_and_prometheus_text(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    post_events = doc["paths"]["/v1/events"]["post"]["responses"]
    assert {"401", "413", "422", "503"} <= set(post_events)
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
