"""Impression tokens: round trip, tampering, expiry, malformed input (pure)."""

from __future__ import annotations

import pytest

from adgen.errors import TokenError
from adgen.tokens import TokenClaims, issue, verify

KEY = b"test-secret"
CLAIMS = TokenClaims("0123456789abcdef0123456789abcdef", 12, 345, 2_000_000_000)


def test_round_trip_is_compact_and_url_safe() -> None:
    token = issue(KEY, CLAIMS)
    assert verify(KEY, token, now=1_900_000_000) == CLAIMS
    assert len(token) < 120
    assert all(c.isalnum() or c in "._-" for c in token)


def test_expired_token() -> None:
    token = issue(KEY, CLAIMS)
    with pytest.raises(TokenError, match="expired"):
        verify(KEY, token, now=2_000_000_000)


def test_another_key_is_a_bad_signature() -> None:
    with pytest.raises(TokenError, match="bad signature"):
        verify(b"other-secret", issue(KEY, CLAIMS), now=0)


@pytest.mark.parametrize("field", [1, 2, 3, 4])
def test_changing_any_claim_breaks_the_signature(field: int) -> None:
    parts = issue(KEY, CLAIMS).split(".")
    parts[field] = parts[field][:-1] + ("7" if parts[field][-1] != "7" else "8")
    with pytest.raises(TokenError, match="bad signature"):
        verify(KEY, ".".join(parts), now=0)


def test_a_changed_signature_is_refused() -> None:
    token = issue(KEY, CLAIMS)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(TokenError, match="bad signature"):
        verify(KEY, flipped, now=0)


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "v2.a.1.2.3.sig", "v1.a.1.2.3", "v1.a b.1.2.3." + "x" * 43,
     "v1.a.-1.2.3." + "x" * 43, "v1.a.1.2.3." + "x" * 42, "v1.a.1.2.3." + "x" * 300,
     "v1.a.1.2.3." + "+" * 43],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(TokenError, match="malformed"):
        verify(KEY, token, now=0)


def test_issue_refuses_what_verify_could_not_parse() -> None:
    with pytest.raises(ValueError, match="impression_id"):
        issue(KEY, TokenClaims("a.b", 1, 1, 1))
    with pytest.raises(ValueError, match="impression_id"):
        issue(KEY, TokenClaims("a" * 33, 1, 1, 1))
    with pytest.raises(ValueError, match="variant_id"):
        issue(KEY, TokenClaims("ab", 1, -1, 1))
    with pytest.raises(ValueError, match="ints"):
        issue(KEY, TokenClaims("ab", True, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key"):
        issue(b"", CLAIMS)
