"""The ``invented_name`` guardrail's reading of English text: capitalised words that are
neither words of the brief nor ordinary English words (pure).

A word counts as a name when it is capitalised ("Peakline"), written in capitals
("PEAKLINE") or camel-case ("PeakLine"). It is not an invented one when

- it is a word of the brief (name, product, brand, benefits, audience), in any case, as a
  possessive or with a plain inflection: "STRIDE", "Stride's", "Trailrunners";
- it is an ordinary English word (``adgen/data/common_words_en.txt``, see
  ``bench/derive_common_words.py``), also inflected: "Run", "Free", "Cushioned";
- it is an acronym of at most four capitals ("GPS", "USA"), or it has digits ("X3", "5K");
- it opens a sentence (the start of the text, or after ". ! ? : ; - – — |") and is not
  camel-case: there a capital says nothing, and a rare real word must not be refused.

Hyphenated words are read part by part ("Stride-Ready" is "Stride" and "Ready").
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from adgen.brief import Brief
from adgen.guardrails.text import normalize

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")
_BRIEF_WORD = re.compile(r"[A-Za-z]+")
_CAMEL = re.compile(r"[a-z][A-Z]")
_BOUNDARY = re.compile(r"[.!?:;|–—]|\s-\s")
_OPENERS = "\"'“‘([ "
_SUFFIXES = ("'s", "’s", "s", "es", "ed", "d", "ing", "er", "ers", "ly", "ies")
_MAX_ACRONYM = 4


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """The ordinary English words, lower case (package data)."""
    raw = resources.files("adgen").joinpath("data", "common_words_en.txt").read_text("utf-8")
    return frozenset(raw.split())


def stems(word: str) -> set[str]:
    """``word`` lower-cased, and without a possessive or a plain inflection ending."""
    low = word.lower()
    found = {low}
    for suffix in _SUFFIXES:
        if low.endswith(suffix) and len(low) - len(suffix) >= 2:
            base = low[: -len(suffix)]
            found.update({base, base + "y"} if suffix == "ies" else {base, base + "e"})
    return found


def brief_words(brief: Brief) -> frozenset[str]:
    """The stems of every word of the brief's name, product, brand, benefits and audience,
    also of the parts of its camel-case words ("BeanBox" gives "beanbox", "bean", "box")."""
    text = " ".join([brief.name, brief.product, brief.brand, *brief.benefits, brief.audience])
    words = _BRIEF_WORD.findall(text)
    parts = [p for w in words for p in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", w)]
    return frozenset(s for w in (*words, *parts) for s in stems(w))


def _sentence_starts(text: str) -> set[int]:
    """Offsets of the first letter of each sentence (or clause after ``:``, ``-``...)."""
    starts = {0, *(m.end() for m in _BOUNDARY.finditer(text))}
    found = set()
    for start in starts:
        while start < len(text) and text[start] in _OPENERS:
            start += 1
        found.add(start)
    return found


def _is_name(word: str, sentence_start: bool, known: tuple[frozenset[str], ...]) -> bool:
    """True for a capitalised ``word`` that is in none of the ``known`` word sets (the brief's,
    the common ones) and not exempt."""
    if not word[0].isupper() or any(ch.isdigit() for ch in word):
        return False
    if word.isupper() and len(word) <= _MAX_ACRONYM:
        return False
    forms = stems(word)
    if any(forms & words for words in known):
        return False
    return not sentence_start or _CAMEL.search(word) is not None


def invented_names(text: str, brief: Brief) -> list[str]:
    """The capitalised words of ``text`` that look like names the brief never gave."""
    norm = normalize(text)
    starts = _sentence_starts(norm)
    known = (brief_words(brief), common_words())
    names: list[str] = []
    for match in _WORD.finditer(norm.replace("-", " ")):
        word = match.group(0)
        if _is_name(word, match.start() in starts, known) and word not in names:
            names.append(word)
    return names
