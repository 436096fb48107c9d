"""What the API's handlers share: settings, sessions, allocator, producer, metrics, keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from adgen.allocator import Allocator
from adgen.api.shipper import EventShipper
from adgen.errors import BusError
from adgen.metrics import ApiMetrics
from adgen.settings import Settings
from adgen.tokens import Signer


@dataclass
class AppState:
    """One per app, on ``app.state.adgen``; the shipper exists while the app runs."""

    settings: Settings
    sessions: sessionmaker[Session]
    allocator: Allocator
    metrics: ApiMetrics
    admin_token: str
    signer: Signer
    shipper: EventShipper | None = field(default=None)

    def require_shipper(self) -> EventShipper:
        """The running event shipper; BusError before start-up finished or after shutdown."""
        if self.shipper is None:
            raise BusError("the event producer is not running")
        return self.shipper
