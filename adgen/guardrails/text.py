"""Text helpers shared by the guardrails: normalisation, scripts, counting, term matching.

Terms are matched in one of two ways, chosen by the term itself:

* a term containing CJK characters matches as a substring (Chinese has no spaces between
  words), after the *allowed* words have been masked out;
* any other term matches case-insensitively with boundaries at its alphanumeric ends, so
  ``best`` matches "Best shoes" and "best-selling" but not "bestow", and ``#1`` matches
  "#1 choice" but not "#10".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef"
_CJK = re.compile(f"[{_CJK_RANGES}]")
_TOKEN = re.compile(f"[{_CJK_RANGES}]|[^\\W_{_CJK_RANGES}]+(?:'[^\\W_{_CJK_RANGES}]+)?")
_SPACES = re.compile(r"\s+")
_MASK = " "


def normalize(text: str) -> str:
    """NFKC (full-width forms to ASCII), whitespace collapsed, stripped."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def is_cjk(ch: str) -> bool:
    """True for a CJK ideograph."""
    return bool(_CJK.fullmatch(ch))


def has_cjk(text: str) -> bool:
    """True when ``text`` contains at least one CJK ideograph."""
    return _CJK.search(text) is not None


def cjk_share(text: str) -> float:
    """Share of the letters in ``text`` that are CJK ideographs (0.0 when it has no letters)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if is_cjk(ch)) / len(letters)


def length_in(text: str, unit: Literal["chars", "words"]) -> int:
    """Length of ``text`` in characters (code points after normalisation) or words."""
    norm = normalize(text)
    return len(norm.split()) if unit == "words" else len(norm)


def tokens(text: str) -> list[str]:
    """Tokens for distinct-n: each CJK ideograph on its own, Latin words and numbers."""
    return _TOKEN.findall(_fold(text))


_STOPWORDS = frozenset(
    {
        "the", "and", "for", "with", "you", "your", "our", "are", "this", "that", "from", "all",
        "can", "will", "not", "have", "has", "was", "were", "but", "any", "get", "out", "now",
        "more", "just", "who", "what", "when", "how", "its", "it's", "their", "they", "them",
        "than", "then", "into",
    }
)


def topic_keys(text: str) -> set[str]:
    """Rough content keys for on-brief checks: 4-letter prefixes of Latin words of 3+ letters
    that are not stopwords, and the CJK bigrams (a lone CJK character counts on its own)."""
    keys: set[str] = set()
    for run in re.findall(f"[{_CJK_RANGES}]+", _fold(text)):
        keys.update({run} if len(run) == 1 else {run[i : i + 2] for i in range(len(run) - 1)})
    for token in tokens(text):
        if not has_cjk(token) and len(token) >= 3 and token not in _STOPWORDS:
            keys.add(token[:4])
    return keys


def _fold(text: str) -> str:
    return normalize(text).casefold()


def _term_pattern(term: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(part) for part in term.split(" "))
    if has_cjk(term):
        return re.compile(body)
    start = r"(?<![a-z0-9])" if term[0].isalnum() else ""
    end = r"(?![a-z0-9])" if term[-1].isalnum() else ""
    return re.compile(start + body + end)


@dataclass(frozen=True)
class TermMatcher:
    """Finds which of ``terms`` occur in a text, ignoring occurrences inside ``allowed`` words."""

    terms: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    _patterns: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False)
    _allowed: tuple[re.Pattern[str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for term in (*self.terms, *self.allowed):
            if not isinstance(term, str) or not _fold(term):
                raise ValueError(f"a term must be a non-empty string, got {term!r}")
        patterns = tuple((t, _term_pattern(t)) for t in dict.fromkeys(_fold(t) for t in self.terms))
        # Longest first, so that masking 最近 wins over a shorter allowed word inside it.
        allowed = sorted({_fold(a) for a in self.allowed}, key=len, reverse=True)
        object.__setattr__(self, "_patterns", patterns)
        object.__setattr__(self, "_allowed", tuple(_term_pattern(a) for a in allowed))

    def find(self, text: str) -> list[str]:
        """The terms found in ``text`` (case-folded), in the order they were given."""
        folded = _fold(text)
        for pattern in self._allowed:
            folded = pattern.sub(lambda m: _MASK * len(m.group(0)), folded)
        return [term for term, pattern in self._patterns if pattern.search(folded)]


def matcher(terms: Iterable[str], allowed: Iterable[str] = ()) -> TermMatcher:
    """A TermMatcher for ``terms`` (blank entries are an error)."""
    return TermMatcher(tuple(terms), tuple(allowed))
