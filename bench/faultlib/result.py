"""What a fault scenario reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class FaultResult:
    """Counts of one scenario run: what was sent, what the database holds, what went wrong.

    ``lost``: events the system accepted (HTTP 2xx, or produced to the broker) that are
    neither stored nor dead-lettered. ``double_counted``: clicks/conversions counted in
    ``arm_stats`` beyond one per impression, or events stored twice.
    """

    scenario: str
    sent: int
    stored: int
    lost: int
    double_counted: int
    dead_lettered: int
    http_5xx: int
    details: str = ""

    def as_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)

    @property
    def clean(self) -> bool:
        """True when nothing was lost, double counted, or answered with a server error."""
        return self.lost == 0 and self.double_counted == 0 and self.http_5xx == 0
