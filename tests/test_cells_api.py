"""Contextual campaigns end to end: the API on the real PostgreSQL, the real broker and the
real ingest consumer. Impressions carry their cell and snapshot; clicks count for their
impression's cell; results per cell come back from the API and the analyst view."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from api_support import ADMIN, state
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adgen.db.models import AllocationSnapshot, AuditEntry, CellStats, Event
from adgen.ingest.consumer import IngestConsumer
from adgen.settings import Settings

BRIEF = {"name": "Trail shoes", "product": "Trail running shoes", "brand": "Acme",
         "audience": "trail runners", "context_attributes": ["device"], "max_cells": 2}
TEXTS = ["Acme trail shoes grip wet rock", "Dry feet on muddy trails with Acme",
         "Lighter weekend trails in Acme"]



def _allocate(client: TestClient, cid: int, context: dict | None, n: int) -> list[dict]:
    out = []
    for _ in range(n):
        r = client.post("/v1/allocate", json={"campaign_id": cid, "context": context})
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def test_impressions_carry_cell_and_snapshot_and_results_are_per_cell(
    client: TestClient, app: FastAPI, settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    r = client.post("/v1/campaigns", json=BRIEF, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["context_attributes"] == ["device"] and r.json()["max_cells"] == 2
    cid = r.json()["id"]
    r = client.post(f"/v1/campaigns/{cid}/variants", json={"texts": TEXTS}, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert state(app).allocator.refresh()

    ios = _allocate(client, cid, {"device": "ios", "other": 1}, 20)
    android = _allocate(client, cid, {"device": "android"}, 12)
    web = _allocate(client, cid, {"device": "web"}, 6)  # a third cell: over the cap of 2
    bare = _allocate(client, cid, None, 5)
    assert {a["cell"] for a in ios} == {"device=ios"}
    assert {a["cell"] for a in android} == {"device=android"}
    assert {a["cell"] for a in web + bare} == {None}  # served at the campaign level

    clicked = ios[:3] + android[:1]
    for a in clicked:
        assert client.post("/v1/events", json={"type": "click", "token": a["token"]}).status_code \
            == 202
    shipper = state(app).shipper
    assert shipper is not None
    shipper.flush(timeout_s=10)
    with IngestConsumer(settings, state(app).sessions) as consumer:
        consumer.drain(idle_s=1.0)

    with pg_sessions() as session:
        impressions = {
            e.impression_id: e
            for e in session.scalars(select(Event).where(Event.type == "impression"))
        }
        stats = {(s.cell, s.variant_id): s for s in session.scalars(select(CellStats))}
        view = session.execute(sa.text(
            "SELECT cell, SUM(impressions), SUM(clicks) FROM cell_performance "
            "WHERE campaign_id = :c GROUP BY cell"
        ), {"c": cid}).all()
    assert len(impressions) == 43
    for a in ios + android:
        assert impressions[a["impression_id"]].cell == a["cell"]
    for a in web + bare:
        assert impressions[a["impression_id"]].cell is None
    assert all(e.snapshot_id is not None for e in impressions.values())
    for cell, served in (("device=ios", ios), ("device=android", android)):
        count = Counter(a["variant_id"] for a in served)
        clicks = Counter(a["variant_id"] for a in clicked if a["cell"] == cell)
        for vid, n in count.items():
            assert stats[(cell, vid)].impressions == n
            assert stats[(cell, vid)].clicks == clicks.get(vid, 0)
    assert sorted((c, int(n), int(k)) for c, n, k in view) == [
        ("device=android", 12, 1), ("device=ios", 20, 3)
    ]

    # after a refresh each cell has its own pooled posterior and its own snapshot
    assert state(app).allocator.refresh()
    allocator = state(app).allocator
    again = allocator.allocate(cid, {"device": "ios"})
    fallback = allocator.allocate(cid, {"device": "web"})
    with pg_sessions() as session:
        cells_of = {
            s.id: s.cell
            for s in session.scalars(
                select(AllocationSnapshot).where(AllocationSnapshot.campaign_id == cid)
            )
        }
    assert set(cells_of.values()) == {"", "device=ios", "device=android"}
    assert again.cell == "device=ios" and cells_of[again.snapshot_id or 0] == "device=ios"
    assert fallback.cell is None and cells_of[fallback.snapshot_id or 0] == ""
    ios_arms = state(app).allocator.arms(cid, "device=ios")
    assert sum(a.probability for a in ios_arms) == pytest.approx(1.0)
    assert sum(a.trials for a in ios_arms) > 20  # own 20 impressions plus pooled prior

    body = client.get(f"/v1/campaigns/{cid}/cells").json()
    assert body["context_attributes"] == ["device"] and body["max_cells"] == 2
    assert body["prior_strength"] is not None
    got = {c["cell"]: c for c in body["cells"]}
    assert got["device=ios"]["impressions"] == 20 and got["device=ios"]["clicks"] == 3
    assert got["device=android"]["impressions"] == 12
    for v in got["device=ios"]["variants"]:
        assert v["ci95_low"] <= v["ci95_high"]
        assert v["probability"] is not None

    # operators change the attributes (admin only, audited)
    patch = {"context_attributes": ["device", "placement"], "max_cells": 8}
    assert client.patch(f"/v1/campaigns/{cid}/cells", json=patch).status_code == 401
    r = client.patch(f"/v1/campaigns/{cid}/cells", json=patch, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["context_attributes"] == ["device", "placement"]
    bad = client.patch(
        f"/v1/campaigns/{cid}/cells", json={"context_attributes": ["a=b"]}, headers=ADMIN
    )
    assert bad.status_code == 422 and "must not contain" in bad.text
    with pg_sessions() as session:
        actions = list(session.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == str(cid))
        ))
    assert actions == ["campaign.cells"]
    # the old cells name other attributes now: a full context gets a new cell
    new = _allocate(client, cid, {"device": "ios", "placement": "news"}, 1)[0]
    assert new["cell"] == "device=ios|placement=news"

    # the console's campaign page shows the cell table
    token = ADMIN["Authorization"].removeprefix("Bearer ")
    assert client.post("/ui/login", data={"token": token}).status_code == 200
    page = client.get(f"/ui/campaigns/{cid}").text
    assert 'id="cells"' in page and "device, placement" in page
    assert page.index('data-cell="device=ios"') < page.index('data-cell="device=android"')
