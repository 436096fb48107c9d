"""Preference pairs from past tests: within a test and group, A over B when likely better.

A is preferred over B when the posterior probability that A's rate exceeds B's (Beta(1, 1)
priors, :func:`adgen.stats.prob_better`) is at least ``threshold``; arms are compared only
within the same test and the same group (for Upworthy, the same image), and never with an
arm of the same text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from adgen.history.evidence import HistoricalEvidence
from adgen.stats import prob_better


@dataclass(frozen=True)
class HistoricalPair:
    """``preferred`` beat ``other`` in test ``experiment_id`` with posterior ``probability``."""

    experiment_id: int
    group: str | None
    preferred: str
    other: str
    probability: float


def historical_pairs(
    arms: Iterable[HistoricalEvidence], threshold: float = 0.9, metric: str = "clicks"
) -> Iterator[HistoricalPair]:
    """Every ordered pair within a test and group whose P(better) reaches ``threshold``."""
    if not 0.5 <= threshold < 1.0:
        raise ValueError(f"threshold must be in [0.5, 1), got {threshold!r}")
    if metric not in ("clicks", "conversions"):
        raise ValueError(f"metric must be 'clicks' or 'conversions', got {metric!r}")
    cells: dict[tuple[int, str | None], list[HistoricalEvidence]] = defaultdict(list)
    for arm in arms:
        if arm.impressions > 0:
            cells[(arm.experiment_id, arm.group)].append(arm)
    for (experiment_id, group), members in cells.items():
        for a in members:
            for b in members:
                if a is b or a.text == b.text:
                    continue
                p = prob_better(
                    a.successes(metric), a.impressions, b.successes(metric), b.impressions
                )
                if p >= threshold:
                    yield HistoricalPair(experiment_id, group, a.text, b.text, p)
