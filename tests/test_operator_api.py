"""Operator controls through the API on the real PostgreSQL and broker: pause / resume,
traffic controls, audit log, campaign listing, SRM, and one definition per figure (the
API and the analyst view agree)."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa
from api_support import ADMIN, state
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adgen.ingest.consumer import IngestConsumer
from adgen.settings import Settings

BRIEF = {"name": "Trail", "product": "Trail running shoes", "brand": "Acme",
         "audience": "weekend trail runners"}
TEXTS = ["Acme trail shoes grip wet rock", "Run muddy trails with dry feet in Acme",
         "Weekend trails feel lighter in Acme shoes"]



def _campaign(client: TestClient) -> tuple[int, list[int]]:
    cid = client.post("/v1/campaigns", json=BRIEF, headers=ADMIN).json()["id"]
    r = client.post(f"/v1/campaigns/{cid}/variants", json={"texts": TEXTS}, headers=ADMIN)
    assert r.status_code == 201, r.text
    app = client.app
    assert isinstance(app, FastAPI) and state(app).allocator.refresh()
    return cid, [v["id"] for v in r.json()]


def _allocate(client: TestClient, cid: int, n: int) -> Counter[int]:
    served: Counter[int] = Counter()
    for _ in range(n):
        r = client.post("/v1/allocate", json={"campaign_id": cid})
        assert r.status_code == 200, r.text
        served[r.json()["variant_id"]] += 1
    return served


def test_a_paused_variant_gets_no_traffic_from_the_next_allocation_on(
    client: TestClient, app: FastAPI
) -> None:
    cid, vids = _campaign(client)
    assert set(_allocate(client, cid, 200)) == set(vids)

    assert client.post(f"/v1/variants/{vids[0]}/pause").status_code == 401
    r = client.post(f"/v1/variants/{vids[0]}/pause", headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "paused"
    served = _allocate(client, cid, 1000)  # no refresh in between
    assert vids[0] not in served and sum(served.values()) == 1000

    assert client.post(f"/v1/variants/{vids[0]}/pause", headers=ADMIN).status_code == 409
    assert client.post("/v1/variants/999999/pause", headers=ADMIN).status_code == 404
    assert client.post(f"/v1/variants/{vids[0]}/resume", headers=ADMIN).status_code == 200
    assert vids[0] in _allocate(client, cid, 300)

    assert client.post(f"/v1/campaigns/{cid}/pause", headers=ADMIN).json()["status"] == "paused"
    assert client.post("/v1/allocate", json={"campaign_id": cid}).status_code == 409
    assert client.post(f"/v1/campaigns/{cid}/resume", headers=ADMIN).status_code == 200
    assert client.post("/v1/allocate", json={"campaign_id": cid}).status_code == 200

    log = client.get("/v1/audit", headers=ADMIN).json()
    assert [(e["action"], e["target_id"]) for e in log] == [
        ("campaign.resume", str(cid)), ("campaign.pause", str(cid)),
        ("variant.resume", str(vids[0])), ("variant.pause", str(vids[0])),
    ]
    assert log[-1]["before"] == {"status": "active"} and log[-1]["after"] == {"status": "paused"}
    assert client.get("/v1/audit").status_code == 401


def test_traffic_controls_are_stored_per_campaign_and_served(
    client: TestClient, app: FastAPI, settings: Settings
) -> None:
    cid, _ = _campaign(client)
    shown = client.get(f"/v1/campaigns/{cid}").json()
    assert shown["controls"] == {"floor": settings.candidate_traffic_floor,
                                 "cap": settings.candidate_traffic_cap,
                                 "min_exploration": settings.min_exploration}
    r = client.patch(f"/v1/campaigns/{cid}/controls", json={"min_exploration": 0.3, "cap": 0.5},
                     headers=ADMIN)
    assert r.status_code == 200 and r.json()["min_exploration"] == 0.3
    shown = client.get(f"/v1/campaigns/{cid}").json()
    assert (shown["traffic_cap"], shown["min_exploration"], shown["traffic_floor"]) == (
        0.5, 0.3, None)
    refused = client.patch(f"/v1/campaigns/{cid}/controls", json={"floor": 0.9}, headers=ADMIN)
    assert refused.status_code == 422 and "exceed cap" in refused.json()["detail"]
    assert client.patch(f"/v1/campaigns/{cid}/controls", json={"cap": 2},
                        headers=ADMIN).status_code == 422
    assert client.get(f"/v1/campaigns/{cid}").json()["traffic_floor"] is None  # unchanged
    entry = client.get("/v1/audit", headers=ADMIN).json()[0]
    assert entry["action"] == "campaign.controls"
    assert entry["after"] == {"floor": None, "cap": 0.5, "min_exploration": 0.3}


def test_campaigns_are_listed_by_status_one_page_at_a_time(client: TestClient) -> None:
    ids = [_campaign(client)[0] for _ in range(3)]
    client.post(f"/v1/campaigns/{ids[1]}/pause", headers=ADMIN)
    assert [c["id"] for c in client.get("/v1/campaigns").json()] == ids
    assert [c["id"] for c in client.get("/v1/campaigns?status=active").json()] == [ids[0], ids[2]]
    assert [c["id"] for c in client.get("/v1/campaigns?limit=1&offset=1").json()] == [ids[1]]
    assert client.get("/v1/campaigns?status=bogus").status_code == 422
    assert client.get("/v1/campaigns?limit=0").status_code == 422


def test_srm_and_figures_agree_between_api_and_analyst_views(
    client: TestClient, app: FastAPI, settings: Settings
) -> None:
    cid, vids = _campaign(client)
    tokens = [client.post("/v1/allocate", json={"campaign_id": cid}).json() for _ in range(400)]
    for t in tokens[::7]:
        client.post("/v1/events", json={"type": "click", "token": t["token"]})
    for t in tokens[::21]:
        client.post("/v1/events", json={"type": "conversion", "token": t["token"], "value": 3})
    app_state = state(app)
    assert app_state.shipper is not None
    app_state.shipper.flush(timeout_s=10)
    with IngestConsumer(settings, app_state.sessions) as consumer:
        consumer.drain(idle_s=1.0)

    srm = client.get(f"/v1/campaigns/{cid}/srm").json()
    assert srm["ready"] and sum(a["observed"] for a in srm["arms"]) == 400
    assert sum(a["expected"] for a in srm["arms"]) == pytest.approx(400)
    assert client.get("/v1/campaigns/999999/srm").status_code == 404
    metrics = client.get("/metrics").text
    assert f'adgen_srm_p_value{{campaign_id="{cid}"}}' in metrics

    api = {v["id"]: v for v in client.get(f"/v1/campaigns/{cid}").json()["variants"]}
    assert sum(v["prob_best"] for v in api.values()) == pytest.approx(1.0)
    with app_state.sessions() as session:
        view = {r.variant_id: r for r in session.execute(
            sa.text("SELECT * FROM variant_performance WHERE campaign_id = :c"), {"c": cid})}
        srm_view = {r.variant_id: r for r in session.execute(
            sa.text("SELECT * FROM campaign_srm WHERE campaign_id = :c"), {"c": cid})}
    assert set(view) == set(vids)
    for vid, v in api.items():
        row = view[vid]
        assert v["clicks"] > 0 and v["conversions"] > 0
        assert float(row.ctr) == pytest.approx(v["ctr"])
        assert float(row.conversion_rate) == pytest.approx(v["conversion_rate"])
        assert float(row.ctr_ci95_low) == pytest.approx(v["ci95_low"], abs=1e-12)
        assert float(row.ctr_ci95_high) == pytest.approx(v["ci95_high"], abs=1e-12)
    for arm in srm["arms"]:
        assert srm_view[arm["variant_id"]].observed == arm["observed"]
        assert float(srm_view[arm["variant_id"]].expected) == pytest.approx(arm["expected"])
