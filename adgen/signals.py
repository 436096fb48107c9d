"""Graceful shutdown for long-running workers: an event that SIGTERM and SIGINT set."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)


def stop_on_signals(*signums: int) -> threading.Event:
    """An event set when one of ``signums`` (default SIGTERM, SIGINT) arrives.

    Call from the main thread. The worker checks the event between units of work, so the
    one in hand is finished before it exits.
    """
    stop = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received: finishing the work in hand, then stopping",
                    signal.Signals(signum).name)
        stop.set()

    for signum in signums or (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _handler)
    return stop
