"""Diversity: near-duplicate detection and batch metrics (distinct-n, pairwise similarity).

Similarity is the Jaccard index of character bigrams of the normalised texts (case-folded,
punctuation and spaces removed). Bigrams work for both scripts: two Chinese characters
are the typical word, and in English a changed word changes few of the bigrams, so small
edits stay similar while reordered sentences are caught too. Identical texts score 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations

from adgen.guardrails.text import normalize, tokens


def _key(text: str) -> str:
    return "".join(ch for ch in normalize(text).casefold() if ch.isalnum())


def _bigrams(text: str) -> frozenset[str]:
    key = _key(text)
    if len(key) < 2:
        return frozenset({key}) if key else frozenset()
    return frozenset(key[i : i + 2] for i in range(len(key) - 1))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of character bigrams, in [0, 1]; 1.0 for identical keys."""
    ga, gb = _bigrams(a), _bigrams(b)
    if not ga and not gb:
        return 1.0
    return len(ga & gb) / len(ga | gb)


def most_similar(text: str, others: Sequence[str]) -> tuple[str, float] | None:
    """The text in ``others`` most similar to ``text`` and the similarity (None if empty)."""
    if not others:
        return None
    score, other = max((similarity(text, o), o) for o in others)
    return other, score


@dataclass(frozen=True)
class DiversityMetrics:
    """How varied a batch of texts is."""

    n: int
    distinct_1: float
    distinct_2: float
    mean_pairwise_similarity: float

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready figures."""
        return asdict(self)


def _distinct(token_lists: Sequence[list[str]], n: int) -> float:
    grams = [tuple(toks[i : i + n]) for toks in token_lists for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def batch_metrics(texts: Sequence[str]) -> DiversityMetrics:
    """distinct-1, distinct-2 (unique n-grams / all n-grams, words for Latin text and
    characters for Chinese) and the mean pairwise similarity of ``texts``."""
    token_lists = [tokens(t) for t in texts]
    pairs = list(combinations(texts, 2))
    mean_sim = sum(similarity(a, b) for a, b in pairs) / len(pairs) if pairs else 0.0
    return DiversityMetrics(
        n=len(texts),
        distinct_1=_distinct(token_lists, 1),
        distinct_2=_distinct(token_lists, 2),
        mean_pairwise_similarity=mean_sim,
    )
