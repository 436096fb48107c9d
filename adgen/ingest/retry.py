"""Which database errors are worth retrying, and how long to wait between tries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exc as sa_exc


def is_transient(error: BaseException) -> bool:
    """True for errors that may pass: lost connections, timeouts, locks, serialization."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)


#: The database refused the data itself (a constraint, a value out of range): not transient.
REFUSALS = (sa_exc.IntegrityError, sa_exc.DataError)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``initial_s``, doubled after each failure, capped at ``max_s``."""

    initial_s: float = 0.2
    max_s: float = 10.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s):
            raise ValueError(
                f"backoff needs 0 < initial_s <= max_s, got initial_s={self.initial_s}, "
                f"max_s={self.max_s}"
            )
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        return min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))
