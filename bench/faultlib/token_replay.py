"""Tokens replayed 50 times with distinct event ids: each impression counts one click and
one conversion however often its token comes back (real API, broker, ingest, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import requests
import sqlalchemy as sa

from faultlib.api_harness import api_stack
from faultlib.result import FaultResult

NAME = "token_replay"
REPLAYS = 50


def run(workdir: Path, quick: bool, seed: int) -> FaultResult:
    """Serve impressions, replay each token ``REPLAYS`` times as clicks and conversions with
    distinct event ids, ingest, and compare ``arm_stats`` with one per impression."""
    impressions = 4 if quick else 40
    sent = http_5xx = accepted = 0
    with api_stack(workdir) as stack:
        cid, _ = stack.campaign()
        stack.wait_servable(cid)
        http = requests.Session()
        tokens = []
        for _ in range(impressions):
            r = http.post(f"{stack.base_url}/v1/allocate", json={"campaign_id": cid}, timeout=10)
            http_5xx += r.status_code >= 500
            if r.status_code == 200:
                tokens.append(r.json()["token"])
        for i, token in enumerate(tokens):
            for n in range(REPLAYS):
                for kind, extra in (("click", {}), ("conversion", {"value": 1.0})):
                    body = {"type": kind, "token": token, "event_id": f"s{seed}-{i}-{kind}-{n}",
                            **extra}
                    r = http.post(f"{stack.base_url}/v1/events", json=body, timeout=10)
                    sent += 1
                    http_5xx += r.status_code >= 500
                    accepted += r.status_code == 202
        stack.ingest()
        with stack.engine.connect() as conn:
            stored = conn.execute(sa.text(
                "SELECT count(*) FROM events WHERE type <> 'impression'")).scalar_one()
            dead = conn.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar_one()
            clicks, conversions, imps = conn.execute(sa.text(
                "SELECT COALESCE(SUM(clicks), 0), COALESCE(SUM(conversions), 0), "
                "COALESCE(SUM(impressions), 0) FROM arm_stats")).one()
            twice = conn.execute(sa.text(
                "SELECT count(*) FROM (SELECT impression_id, type FROM events "
                "WHERE count_status = 'counted' GROUP BY impression_id, type "
                "HAVING count(*) > 1) AS t")).scalar_one()
    expected = len(tokens)
    double = max(0, clicks - expected) + max(0, conversions - expected) + twice
    return FaultResult(
        scenario=NAME, sent=sent, stored=int(stored), lost=max(0, accepted - stored - dead),
        double_counted=int(double), dead_lettered=int(dead), http_5xx=http_5xx,
        details=f"{expected} impressions ({imps} counted), {REPLAYS} replays each: "
                f"{clicks} clicks and {conversions} conversions counted",
    )
