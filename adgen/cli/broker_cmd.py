"""``adgen broker``: run the embedded Kafka-compatible broker by hand."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Annotated

import typer

from adgen.bus.broker import EmbeddedBroker


def broker(
    port: Annotated[int, typer.Option(help="Loopback port to listen on (0 = any free).")] = 9092,
) -> None:
    """Start the embedded broker (Tansu, memory storage) until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmbeddedBroker(port=port or None) as b:
        typer.echo(f"embedded broker on {b.bootstrap} (export ADGEN_KAFKA_BOOTSTRAP={b.bootstrap})")
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
