"""Bandit policies (pure numpy, injected ``numpy.random.Generator``, no I/O).

:class:`ThompsonSampling` serves live traffic; :class:`UniformPolicy`,
:class:`EpsilonGreedy` and :class:`UCB1` share its interface for benchmarks.
"""

from __future__ import annotations

from adgen.bandit.baselines import UCB1, EpsilonGreedy, UniformPolicy
from adgen.bandit.controls import NO_CONTROLS, Controls, apply_controls
from adgen.bandit.discount import DiscountedEvidence
from adgen.bandit.policy import Choice, Policy
from adgen.bandit.thompson import ThompsonSampling, sample_choice, win_probabilities

__all__ = [
    "NO_CONTROLS",
    "UCB1",
    "Choice",
    "Controls",
    "DiscountedEvidence",
    "EpsilonGreedy",
    "Policy",
    "ThompsonSampling",
    "UniformPolicy",
    "apply_controls",
    "sample_choice",
    "win_probabilities",
]
