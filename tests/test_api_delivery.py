"""The API's delivery state over HTTP: a full spool is a 503 that says so (nothing is
accepted that could not be kept) and /metrics shows the spool (the broker_restart fault
test sees /readyz say degraded while events are spooled)."""

from __future__ import annotations

from api_support import ADMIN
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adgen.api.state import AppState

BRIEF = {"name": "Spool", "product": "Trail shoes", "brand": "Acme", "audience": "runners"}
TEXTS = ["Acme trail shoes grip wet rock", "Dry feet on muddy trails with Acme"]



def test_a_full_spool_answers_503_and_metrics_show_the_spool(
    client: TestClient, app: FastAPI
) -> None:
    state: AppState = app.state.adgen
    cid = client.post("/v1/campaigns", json=BRIEF, headers=ADMIN).json()["id"]
    r = client.post(f"/v1/campaigns/{cid}/variants", json={"texts": TEXTS}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert state.allocator.refresh()
    ok = client.post("/v1/allocate", json={"campaign_id": cid})
    assert ok.status_code == 200
    shipper = state.shipper
    assert shipper is not None
    shipper.flush(timeout_s=10)
    assert client.get("/readyz").json()["status"] == "ready"

    shipper.spool.max_bytes = 0  # as if the broker had been away until the spool filled
    full = client.post("/v1/allocate", json={"campaign_id": cid})
    assert full.status_code == 503 and "spool is full" in full.json()["detail"]
    click = client.post("/v1/events", json={"type": "click", "token": ok.json()["token"]})
    assert click.status_code == 503 and "spool is full" in click.json()["detail"]
    assert shipper.pending == 0 and shipper.spool.records == 0  # refused, not queued

    spec = client.get("/openapi.json").json()["paths"]
    assert "503" in spec["/v1/allocate"]["post"]["responses"]
    assert "503" in spec["/v1/events"]["post"]["responses"]

    text = client.get("/metrics").text
    for name in ("adgen_spool_events 0.0", "adgen_spool_bytes 0.0",
                 "adgen_oldest_unacknowledged_event_age_seconds", "adgen_delivery_failures",
                 "adgen_spool_write_failures 0.0"):
        assert name in text
