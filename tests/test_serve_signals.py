"""``adgen serve`` (a real process) stops the embedded broker it started when SIGTERMed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from adgen.bus.broker import free_port


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(c) for c in text)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_stops_the_embedded_broker_too(tmp_path: Path) -> None:
    env = {**os.environ, "ADGEN_VAR_DIR": str(tmp_path / "var")}
    env.pop("ADGEN_KAFKA_BOOTSTRAP", None)
    env.pop("ADGEN_DATABASE_URL", None)
    cli = [sys.executable, "-m", "adgen.cli.main"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "adgen serve did not come up"
            time.sleep(0.2)
        brokers = [c for c in _children(proc.pid)
                   if "tansu" in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(brokers) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while _alive(brokers[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(brokers[0]), "the embedded broker outlived adgen serve"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
