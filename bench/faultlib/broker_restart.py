"""The broker SIGKILLed and restarted under API traffic, the API not restarted.

The API must keep answering (2xx, no 5xx), spool what the broker did not acknowledge,
report ``degraded``, rebuild its producer against the new broker and replay the spool;
every event it accepted must end up stored. The embedded broker keeps everything in
memory, so a restart forgets what it held, acknowledged or not: the kill therefore comes
once ingest has stored what the broker had acknowledged (traffic paused for that moment,
resumed right after the kill), so that the count measures the API, not the broker's
memory. With Apache Kafka (replicated, on disk) that pause is not needed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from adgen.bus.broker import EmbeddedBroker
from faultlib.harness import (
    Traffic,
    adgen_env,
    counts,
    make_campaign,
    metric,
    result_from,
    shared_pg_database,
    start_api,
    start_ingest,
    wait_until,
)
from faultlib.result import FaultResult

NAME = "broker_restart"


def run(workdir: Path, quick: bool, seed: int) -> FaultResult:
    """Traffic, kill the broker, traffic while it is away, restart it, traffic, count."""
    phase_s = 2.0 if quick else 10.0
    broker = EmbeddedBroker().start()
    restarted: EmbeddedBroker | None = None
    with shared_pg_database() as url:
        campaign, _ = make_campaign(url)
        env = adgen_env(workdir, url, broker.bootstrap, ADGEN_DELIVERY_TIMEOUT_S="2",
                        ADGEN_UNACKED_DEGRADED_S="1", ADGEN_INGEST_STALL_S="6")
        api, base = start_api(env, workdir)
        ingest = start_ingest(env, workdir)
        traffic = Traffic(base, campaign).start()
        degraded_seen = spooled_seen = 0.0
        try:
            time.sleep(phase_s)
            traffic.paused.set()  # let ingest store what the broker holds (it is memory-only)
            wait_until(lambda: traffic.accepted <= counts(url).event_ids, 60,
                       "ingest to store the events sent before the kill")
            old_pid = broker.pid
            assert old_pid is not None
            os.kill(old_pid, signal.SIGKILL)
            broker.stop()  # reaps it
            traffic.paused.clear()
            away_until = time.monotonic() + max(phase_s, 4.0)
            while time.monotonic() < away_until:  # the API keeps taking traffic meanwhile
                ready = httpx.get(f"{base}/readyz", timeout=5).json()
                degraded_seen = max(degraded_seen, float(ready["status"] == "degraded"))
                spooled_seen = max(spooled_seen, metric(base, "adgen_spool_events"))
                time.sleep(0.3)
            restarted = EmbeddedBroker(port=broker.port).start()
            new_pid = restarted.pid
            time.sleep(phase_s)
            traffic.stop()
            wait_until(lambda: metric(base, "adgen_spool_events") == 0, 90,
                       "the API to replay its spool")
            wait_until(lambda: traffic.accepted <= counts(url).event_ids, 120,
                       "ingest to store every accepted event")
            failures = metric(base, "adgen_delivery_failures")
        finally:
            traffic.stop()
            ingest.stop()
            api.stop()
            if restarted is not None:
                restarted.stop()
            broker.stop()
        details = (f"broker pid {old_pid} killed and restarted as pid {new_pid}; "
                   f"answers {dict(traffic.answers)}; "
                   f"most spooled {spooled_seen:.0f}; degraded seen {bool(degraded_seen)}; "
                   f"delivery failures {failures:.0f}")
        result = result_from(NAME, url, traffic.sent, traffic.http_5xx, details,
                             accepted=traffic.accepted)
    return result
