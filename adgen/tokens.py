"""Signed impression tokens: HMAC-SHA256 over impression, campaign, variant and expiry.

A token is ``v1.<impression_id>.<campaign_id>.<variant_id>.<expiry>.<signature>``: plain
ASCII, URL-safe, about 110 characters. The signature is the URL-safe base64 of an
HMAC-SHA256 over everything before it, compared in constant time. Pure: the caller passes
the key and the clock.

``Signer(key)`` prepares the HMAC once; ``issue`` and ``verify`` are one-off shortcuts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from adgen.errors import TokenError

VERSION = "v1"
#: Impression ids of 1-32 characters keep every derived event id within 64 characters.
_IMPRESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_UINT = re.compile(r"[0-9]{1,19}")
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")
MAX_TOKEN_LENGTH = 256


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token vouches for."""

    impression_id: str
    campaign_id: int
    variant_id: int
    expires_at: int  # unix seconds


class Signer:
    """Issues and verifies tokens with one key (its HMAC state is prepared once)."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the token key must not be empty")
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def _sign(self, message: str) -> str:
        mac = self._base.copy()
        mac.update(message.encode("ascii"))
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")

    def issue(self, claims: TokenClaims) -> str:
        """A token for ``claims``."""
        if not _IMPRESSION_ID.fullmatch(claims.impression_id):
            raise ValueError(
                "impression_id must be 1-32 characters of [A-Za-z0-9_-], "
                f"got {claims.impression_id!r}"
            )
        numbers = (claims.campaign_id, claims.variant_id, claims.expires_at)
        if not all(type(v) is int and v >= 0 for v in numbers):
            raise ValueError(
                f"campaign_id, variant_id and expires_at must be ints >= 0, got {numbers!r}"
            )
        body = f"{VERSION}.{claims.impression_id}.{numbers[0]}.{numbers[1]}.{numbers[2]}"
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, now: float) -> TokenClaims:
        """The claims of a valid token; TokenError says why a token is refused.

        Reasons: ``malformed`` (not a token of this format), ``bad signature`` (tampered
        with or signed with another key), ``expired``.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("malformed token: not a string of at most 256 characters")
        parts = token.split(".")
        if len(parts) != 6 or parts[0] != VERSION:
            raise TokenError(
                f"malformed token: expected 6 dot-separated parts starting {VERSION!r}"
            )
        _, impression_id, campaign, variant, expiry, signature = parts
        if not (
            _IMPRESSION_ID.fullmatch(impression_id)
            and _UINT.fullmatch(campaign)
            and _UINT.fullmatch(variant)
            and _UINT.fullmatch(expiry)
            and _SIGNATURE.fullmatch(signature)
        ):
            raise TokenError("malformed token: a field has characters or a length it cannot have")
        body = token[: -len(signature) - 1]
        if not hmac.compare_digest(self._sign(body), signature):
            raise TokenError("bad signature: the token was altered or not issued by this server")
        claims = TokenClaims(impression_id, int(campaign), int(variant), int(expiry))
        if now >= claims.expires_at:
            raise TokenError(f"expired token: it expired at {claims.expires_at} (unix seconds)")
        return claims


def issue(key: bytes, claims: TokenClaims) -> str:
    """A token for ``claims`` signed with ``key`` (see :class:`Signer` to reuse a key)."""
    return Signer(key).issue(claims)


def verify(key: bytes, token: str, now: float) -> TokenClaims:
    """The claims of a valid ``token`` signed with ``key``; TokenError says why not."""
    return Signer(key).verify(token, now)
