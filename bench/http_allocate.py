"""HTTP allocation throughput: ``adgen serve`` beside a bare FastAPI endpoint (the ceiling).

Starts ``adgen serve`` as a subprocess on a free loopback port, on a throwaway SQLite
database holding one campaign of 10 variants and the embedded broker (so every
allocation also queues its impression event to Kafka), and a bare FastAPI app served the
same way (uvicorn, same options) whose ``POST /v1/allocate`` parses the same request body
and returns a constant. A keep-alive HTTP/1.1 load generator (asyncio, raw sockets, a
fixed number of connections) sends a bounded number of requests, within a time limit, to
each in turn, twice, and reports requests/s and p50/p99 latency of both. Client and
servers share this machine's cores.

    python bench/http_allocate.py [--quick] [--seed N] [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from _report import emit, table  # bench/_report.py, beside this script

from adgen.api.schemas import AllocateRequest

HOST = "127.0.0.1"
CONSTANT = {
    "impression_id": "0" * 32,
    "campaign_id": 1,
    "variant_id": 1,
    "text": "A constant ad",
    "propensity": 0.1,
    "token": "v1." + "0" * 32 + ".1.1.2000000000." + "A" * 43,
    "expires_at": 2_000_000_000,
}


def serve_bare(port: int) -> None:
    """Run the bare app (called in a subprocess through ``--serve-bare``)."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/allocate")
    async def allocate(body: AllocateRequest) -> dict[str, Any]:
        return CONSTANT

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host=HOST, port=port, access_log=False, log_config=None)


def free_port() -> int:
    from adgen.bus.broker import free_port as _free

    return _free()


def prepare_database(var_dir: Path, seed: int) -> tuple[str, int]:
    """A migrated SQLite database with one campaign of 10 variants, some evidence."""
    import sqlalchemy as sa

    from adgen.brief import Brief
    from adgen.db import migrate
    from adgen.db.campaigns import add_variants, create_campaign
    from adgen.db.engine import make_engine, session_factory, transaction
    from adgen.db.models import ArmStats

    var_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{var_dir / 'adgen.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    rng = np.random.default_rng(seed)
    brief = Brief(name="bench", product="trail shoes", brand="Acme", audience="runners")
    with transaction(session_factory(engine)) as session:
        cid = create_campaign(session, brief).id
        variants = add_variants(session, cid, [f"Acme trail shoes, take {i}" for i in range(10)])
        trials = rng.integers(1000, 5000, size=10)
        clicks = rng.binomial(trials, 0.04)
        session.execute(sa.update(ArmStats), [
            {"variant_id": v.id, "impressions": int(t), "clicks": int(c)}
            for v, t, c in zip(variants, trials, clicks, strict=True)
        ])
    engine.dispose()
    return url, cid


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; log:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if json.loads(r.read()).get("status") in ("ok", "ready"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready at {url} after {timeout_s} s; log:\n{log.read_text()}")


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (None where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Graceful stop (uvicorn shuts the app down; ``adgen serve`` then stops its broker)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _client(port: int, body: bytes, n: int, deadline: float,
                  lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    request = (
        f"POST /v1/allocate HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    clock = time.perf_counter
    try:
        for _ in range(n):
            if clock() > deadline:
                break
            t0 = clock()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            lat.append(clock() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(1)
    finally:
        writer.close()
        await writer.wait_closed()


async def _load(port: int, body: bytes, requests: int, concurrency: int,
                time_limit_s: float) -> tuple[int, float, list[float], int]:
    lat: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + time_limit_s
    per = -(-requests // concurrency)
    start = time.perf_counter()
    await asyncio.gather(*(_client(port, body, per, deadline, lat, errors)
                           for _ in range(concurrency)))
    return len(lat), time.perf_counter() - start, lat, len(errors)


def load(port: int, body: bytes, requests: int, concurrency: int,
         time_limit_s: float) -> tuple[int, float, list[float], int]:
    """(requests done, seconds, latencies in s, non-200 answers)."""
    try:
        import uvloop

        return uvloop.run(_load(port, body, requests, concurrency, time_limit_s))
    except ImportError:
        return asyncio.run(_load(port, body, requests, concurrency, time_limit_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 requests per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--requests", type=int, default=None, help="per target and round")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per target")
    parser.add_argument("--serve-bare", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare is not None:
        serve_bare(args.serve_bare)
        return
    requests = args.requests or (500 if args.quick else 10_000)
    time_limit = 5.0 if args.quick else 60.0
    with tempfile.TemporaryDirectory() as tmp:
        var_dir = Path(tmp) / "var"
        url, cid = prepare_database(var_dir, args.seed)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADGEN_")}
        env.update(ADGEN_VAR_DIR=str(var_dir), ADGEN_DATABASE_URL=url)
        ports = {"adgen": free_port(), "bare": free_port()}
        logs = {name: Path(tmp) / f"{name}.log" for name in ports}
        commands = {
            "adgen": [sys.executable, "-m", "adgen.cli.main", "serve",
                      "--port", str(ports["adgen"])],
            "bare": [sys.executable, __file__, "--serve-bare", str(ports["bare"])],
        }
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name, cmd in commands.items():
                with logs[name].open("wb") as log:
                    procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
            wait_ready(f"http://{HOST}:{ports['adgen']}/readyz", procs["adgen"], 90, logs["adgen"])
            wait_ready(f"http://{HOST}:{ports['bare']}/healthz", procs["bare"], 60, logs["bare"])
            body = json.dumps({"campaign_id": cid}).encode()
            stats: dict[str, dict[str, Any]] = {
                n: {"done": 0, "s": 0.0, "lat": [], "err": 0, "cpu": 0.0} for n in ports
            }
            for name in ports:  # warm-up
                load(ports[name], body, min(200, requests), args.concurrency, time_limit)
            for _ in range(args.rounds):
                for name in ports:
                    cpu0 = cpu_s(procs[name].pid)
                    done, secs, lat, err = load(ports[name], body, requests, args.concurrency,
                                                time_limit)
                    cpu1 = cpu_s(procs[name].pid)
                    if cpu0 is not None and cpu1 is not None:
                        stats[name]["cpu"] += cpu1 - cpu0
                    stats[name]["done"] += done
                    stats[name]["s"] += secs
                    stats[name]["lat"] += lat
                    stats[name]["err"] += err
        finally:
            for proc in procs.values():
                stop(proc)
    figures = {
        name: {
            "rps": st["done"] / st["s"],
            "p50_ms": float(np.percentile(st["lat"], 50) * 1000),
            "p99_ms": float(np.percentile(st["lat"], 99) * 1000),
            "requests": st["done"],
            "errors": st["err"],
            # CPU of the server process itself (not the embedded broker): steadier than
            # requests/s on a shared machine
            "cpu_us": st["cpu"] / st["done"] * 1e6 if st["cpu"] else None,
        }
        for name, st in stats.items()
    }
    a, b = figures["adgen"], figures["bare"]
    table(
        f"POST /v1/allocate over loopback, {args.concurrency} keep-alive connections, "
        f"{args.rounds} alternating rounds",
        ["server", "requests", "non-200", "requests/s", "p50 ms", "p99 ms",
         "server CPU µs/request"],
        [[n, f["requests"], f["errors"], f["rps"], f["p50_ms"], f["p99_ms"], f["cpu_us"]]
         for n, f in figures.items()],
    )
    print(f"adgen / bare = {a['rps'] / b['rps']:.2f}")
    emit({
        "bench": "http_allocate", "quick": args.quick, "seed": args.seed,
        "concurrency": args.concurrency, "requests": a["requests"], "rps": a["rps"],
        "p50_ms": a["p50_ms"], "p99_ms": a["p99_ms"], "errors": a["errors"],
        "bare_requests": b["requests"], "bare_rps": b["rps"], "bare_p50_ms": b["p50_ms"],
        "bare_p99_ms": b["p99_ms"], "ratio_to_bare": a["rps"] / b["rps"],
        "cpu_us_per_request": a["cpu_us"], "bare_cpu_us_per_request": b["cpu_us"],
    })


if __name__ == "__main__":
    main()
