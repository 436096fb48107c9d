"""What the fault scenarios share: real processes (broker, ingest, API), a campaign, HTTP
traffic that remembers what was accepted, and counts taken from the database.

Every process is started here and stopped by its pid; nothing else is touched.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from _fixtures import throwaway_database

from adgen.brief import Brief
from adgen.bus.broker import free_port
from adgen.db import migrate
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from faultlib.result import FaultResult

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
ADMIN_TOKEN = "fault-admin-token-" + "x" * 32
TOKEN_SECRET = "fault-token-secret-" + "y" * 32


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until true; RuntimeError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


# --- databases --------------------------------------------------------------------------
def shared_pg_database() -> AbstractContextManager[str]:
    """A new, migrated database on the shared server, dropped afterwards."""
    return throwaway_database(prefix="adgen_fault")


class PrivateCluster:
    """A throwaway PostgreSQL cluster of our own (initdb + pg_ctl on a free port), so that
    a scenario can stop and start it without touching the shared server. PostgreSQL
    refuses to run as root: then its binaries run as the ``postgres`` user, in a folder
    of its own."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="adgen-fault-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.data = self.folder / "pgdata"
        self.sockets = self.folder
        self.port = free_port()
        self.log = self.folder / "postgres.log"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True)

    def remove(self) -> None:
        """Stop the server if it runs and delete the cluster's folder."""
        if self.running():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``adgen`` database in this cluster."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/adgen"

    def init(self) -> PrivateCluster:
        """initdb, start, create and migrate the ``adgen`` database."""
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync")
        self.start()
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", "adgen")
        migrate.upgrade(self.url)
        return self

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o",
                  options, "-w", "start")

    def stop(self) -> None:
        """Stop the server (fast mode: open connections are cut)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        """True while the server's pid file says it runs."""
        return (self.data / "postmaster.pid").exists()


def make_campaign(url: str, variants: int = 4) -> tuple[int, list[int]]:
    """A campaign with ``variants`` hand-written variants: (campaign id, variant ids)."""
    engine = make_engine(url)
    try:
        with transaction(session_factory(engine)) as session:
            brief = Brief(name="faults", product="trail shoes", brand="Acme", audience="runners")
            campaign = create_campaign(session, brief).id
            made = add_variants(session, campaign,
                                [f"Acme trail shoes, take {i}" for i in range(variants)])
            return campaign, [v.id for v in made]
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Counts:
    """What the database holds."""

    stored: int
    dead_lettered: int
    double_counted: int
    event_ids: frozenset[str]


def counts(url: str) -> Counts:
    """Events, dead letters, and ``arm_stats`` counts beyond the events (one click and one
    conversion per impression at most)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ids = frozenset(r[0] for r in conn.execute(sa.text("SELECT event_id FROM events")))
            dead = conn.execute(sa.text("SELECT count(*) FROM dead_letters")).scalar_one()
            counted = conn.execute(sa.text(
                "SELECT COALESCE(SUM(impressions + clicks + conversions), 0) FROM arm_stats"
            )).scalar_one()
            expected = conn.execute(sa.text(
                "SELECT count(*) FILTER (WHERE type = 'impression') "
                "+ count(DISTINCT impression_id) FILTER (WHERE type = 'click') "
                "+ count(DISTINCT impression_id) FILTER (WHERE type = 'conversion') FROM events"
            )).scalar_one()
    finally:
        engine.dispose()
    return Counts(len(ids), int(dead), max(0, int(counted) - int(expected)), ids)


def stored_count(url: str) -> int:
    """Events stored (cheap: one count)."""
    engine = make_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one())
    except sa.exc.OperationalError:
        return -1  # the database is down right now
    finally:
        engine.dispose()


def stored_at_least(url: str, target: int) -> Callable[[], bool]:
    """A ``wait_until`` condition: at least ``target`` events stored."""
    return lambda: stored_count(url) >= target


# --- processes --------------------------------------------------------------------------
def adgen_env(workdir: Path, url: str, bootstrap: str, **extra: str) -> dict[str, str]:
    """Environment of an adgen subprocess: this checkout first, production-like settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADGEN_")}
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "ADGEN_VAR_DIR": str(workdir / "var"),
        "ADGEN_DATABASE_URL": url,
        "ADGEN_KAFKA_BOOTSTRAP": bootstrap,
        "ADGEN_ADMIN_TOKEN": ADMIN_TOKEN,
        "ADGEN_TOKEN_SECRET": TOKEN_SECRET,
        "ADGEN_INGEST_SESSION_TIMEOUT_MS": "6000",
        "ADGEN_INGEST_MAX_POLL_INTERVAL_MS": "10000",
        "ADGEN_INGEST_RETRY_MAX_S": "1.0",
        **extra,
    })
    return env


class Process:
    """A child process started by a scenario; its output goes to ``log``."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL by pid and reap."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def start_ingest(env: dict[str, str], workdir: Path) -> Process:
    """``python -m services.ingest`` as a child process."""
    return Process([sys.executable, "-m", "services.ingest"], env, workdir / "ingest.log")


def start_api(env: dict[str, str], workdir: Path) -> tuple[Process, str]:
    """``adgen serve`` on a free port; (process, base URL) once ``/readyz`` answers 200."""
    port = free_port()
    api = Process([sys.executable, "-m", "adgen.cli.main", "serve", "--port", str(port)], env,
                  workdir / "api.log")
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if api.proc.poll() is not None:
            raise RuntimeError(f"adgen serve exited: see {api.log}")
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, 90, "the API to be ready")
    return api, base


def metric(base: str, name: str) -> float:
    """One sample of the API's ``/metrics``."""
    for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


# --- traffic ----------------------------------------------------------------------------
@dataclass
class Traffic:
    """Allocations (and a click on every fifth) from a thread until stopped; remembers the
    event id of everything the API accepted and counts the answers."""

    base: str
    campaign: int
    accepted: set[str] = field(default_factory=set)
    answers: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    paused: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        """Begin sending."""
        self._thread = threading.Thread(target=self._run, name="fault-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait for the last request."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    @property
    def http_5xx(self) -> int:
        """Answers 500 and above."""
        return sum(n for status, n in self.answers.items() if status >= 500)

    @property
    def sent(self) -> int:
        """Events accepted (2xx) by the API."""
        return len(self.accepted)

    def _count(self, status: int) -> None:
        self.answers[status] = self.answers.get(status, 0) + 1

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            n = 0
            while not self._stop.is_set():
                if self.paused.is_set():
                    time.sleep(0.05)
                    continue
                n += 1
                try:
                    r = client.post("/v1/allocate", json={"campaign_id": self.campaign})
                    self._count(r.status_code)
                    if r.status_code != 200:
                        continue
                    body = r.json()
                    self.accepted.add(f"impression-{body['impression_id']}")
                    if n % 5 == 0:
                        c = client.post("/v1/events", json={"type": "click",
                                                            "token": body["token"]})
                        self._count(c.status_code)
                        if c.status_code == 202:
                            self.accepted.add(c.json()["event_id"])
                except httpx.TransportError:
                    self.transport_errors += 1
                time.sleep(0.002)


def result_from(
    name: str,
    url: str,
    sent: int,
    http_5xx: int,
    details: str,
    accepted: set[str] | None = None,
) -> FaultResult:
    """The scenario's FaultResult, counted in the database. With ``accepted`` (event ids the
    API answered 2xx for), lost = those not stored; otherwise lost = ``sent`` minus what
    was stored or dead-lettered."""
    c = counts(url)
    if accepted is not None:
        lost = len(accepted - c.event_ids)
    else:
        lost = max(0, sent - c.stored - c.dead_lettered)
    return FaultResult(name, sent, c.stored, lost, c.double_counted, c.dead_lettered, http_5xx,
                       details)
