"""PostgreSQL stopped and started twice under API traffic: a throwaway cluster of our own
(initdb + pg_ctl on a free port), never the shared server.

The API keeps allocating from its last posteriors (degraded, no 5xx); ingest retries
without committing offsets; afterwards every accepted event is stored once.
"""

from __future__ import annotations

import time
from pathlib import Path

from adgen.bus.broker import EmbeddedBroker
from faultlib.harness import (
    PrivateCluster,
    Traffic,
    adgen_env,
    counts,
    make_campaign,
    result_from,
    start_api,
    start_ingest,
    wait_until,
)
from faultlib.result import FaultResult

NAME = "postgres_outage"
OUTAGES = 2


def run(workdir: Path, quick: bool, seed: int) -> FaultResult:
    """Traffic; stop PostgreSQL, wait, start it; twice; then count."""
    phase_s = 2.0 if quick else 10.0
    cluster = PrivateCluster().init()
    try:
        with EmbeddedBroker() as broker:
            campaign, _ = make_campaign(cluster.url)
            env = adgen_env(workdir, cluster.url, broker.bootstrap)
            api, base = start_api(env, workdir)
            ingest = start_ingest(env, workdir)
            heartbeat = workdir / "var" / "ingest.heartbeat"
            wait_until(heartbeat.exists, 60, "ingest to join (its first heartbeat)")
            traffic = Traffic(base, campaign).start()
            try:
                for _ in range(OUTAGES):
                    time.sleep(phase_s)
                    cluster.stop()
                    time.sleep(max(phase_s, 3.0))
                    cluster.start()
                time.sleep(phase_s)
                traffic.stop()
                wait_until(lambda: traffic.accepted <= counts(cluster.url).event_ids, 120,
                           "ingest to store every accepted event")
            finally:
                traffic.stop()
                ingest.stop()
                api.stop()
            return result_from(
                NAME, cluster.url, traffic.sent, traffic.http_5xx,
                f"{OUTAGES} outages of PostgreSQL on port {cluster.port}; "
                f"answers {dict(traffic.answers)}",
                accepted=traffic.accepted,
            )
    finally:
        cluster.remove()
