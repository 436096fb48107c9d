"""The console's login: a signed, expiring session cookie carrying a CSRF token.

The cookie holds ``{"csrf": <random>}`` signed with a key derived from the token secret
and the admin token, so changing the admin token ends every session. It is HttpOnly and
SameSite=Strict; every state-changing form posts the session's CSRF token back, compared
in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from adgen.errors import AuthError

COOKIE = "adgen_console"
#: A session lasts this long after login (seconds); then the operator logs in again.
SESSION_TTL_S = 8 * 3600
_SALT = "adgen-console-session"


@dataclass(frozen=True)
class ConsoleSession:
    """A logged-in operator's session."""

    csrf: str


class SessionKeeper:
    """Issues and reads session cookies; checks login tokens and CSRF tokens."""

    def __init__(self, admin_token: str, token_secret: bytes, *, ttl_s: int = SESSION_TTL_S):
        if not admin_token:
            raise ValueError("the admin token must not be empty")
        key = hashlib.sha256(token_secret + b"\0" + admin_token.encode()).hexdigest()
        self._serializer = URLSafeTimedSerializer(key, salt=_SALT)
        self._admin_token = admin_token.encode()
        self.ttl_s = ttl_s

    def login(self, token: str) -> str:
        """A new session cookie value for the right admin token; AuthError otherwise."""
        if not hmac.compare_digest(token.encode(), self._admin_token):
            raise AuthError("the admin token is not valid")
        return self._serializer.dumps({"csrf": secrets.token_urlsafe(32)})

    def read(self, cookie: str | None) -> ConsoleSession | None:
        """The session in ``cookie``, or None when absent, altered or expired."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.ttl_s)
        except (SignatureExpired, BadSignature):
            return None
        csrf = data.get("csrf") if isinstance(data, dict) else None
        return ConsoleSession(csrf) if isinstance(csrf, str) and csrf else None


def check_csrf(session: ConsoleSession, submitted: str | None) -> None:
    """AuthError unless the form's CSRF token is the session's (constant-time compare)."""
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf.encode()):
        raise AuthError(
            "the form's CSRF token is missing or stale: reload the page and submit it again"
        )
