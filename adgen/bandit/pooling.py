"""Per-cell evidence partially pooled towards the campaign (empirical Bayes; pure numpy).

A contextual campaign splits its traffic into cells (one per combination of the context
values it allocates on). Each cell keeps its own Beta-Bernoulli posteriors, but a cell
seldom has enough traffic of its own, so every arm's cell posterior starts from a prior
built from the campaign's evidence:

    arm k in cell c ~ Beta(1 + s_ck + tau * m_ck, 1 + (n_ck - s_ck) + tau * (1 - m_ck))

where ``m_ck`` is arm k's click rate in the *rest* of the campaign (all other cells, with a
Beta(1, 1) prior, so the cell's own data is not counted twice) and ``tau`` is the prior
strength in pseudo-impressions, capped by the rest's own impressions.

Why empirical Bayes rather than a full hierarchical model: the allocator refreshes
posteriors every few seconds, off the request path but still on a budget; a hierarchical
model fitted by MCMC or variational inference each refresh costs orders of magnitude more
and needs tuning, while the beta-binomial model has a closed-form method-of-moments
estimate of the one number that matters, how much cells really differ. ``tau`` comes from
the between-cell dispersion of the arms' click rates beyond what binomial noise explains
(the DerSimonian-Laird moment estimator, pooled over arms): if a Beta prior of mean ``p``
and strength ``tau`` describes the cells' true rates, their variance is
``p (1 - p) / (tau + 1)``. Cells that agree give a small excess dispersion, a large
``tau``, and cells that follow the campaign (little cost for the extra cells); cells that
disagree give a small ``tau``, and each cell soon follows its own evidence. ``tau`` is
clipped to ``[min_strength, max_strength]`` so that one refresh of noisy data can neither
cut cells loose nor freeze them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from adgen.stats import successes_within


def prior_strength(
    successes: NDArray[np.float64],
    trials: NDArray[np.float64],
    *,
    min_strength: float,
    max_strength: float,
) -> float:
    """The pooled prior strength ``tau`` from per-cell evidence of shape ``(cells, arms)``.

    Method of moments: per arm, Cochran's Q of the cell rates (weights ``n_ck``) in units
    of ``p (1 - p)``, less its expectation under no between-cell variance (cells - 1),
    over ``sum n - sum n^2 / sum n``; summed over arms this estimates ``1 / (tau + 1)``.
    """
    if successes.shape != trials.shape or successes.ndim != 2:
        raise ValueError(
            f"successes {successes.shape} and trials {trials.shape} must be (cells, arms)"
        )
    if not 0 < min_strength <= max_strength:
        raise ValueError(
            f"need 0 < min_strength <= max_strength, got {min_strength} and {max_strength}"
        )
    n = trials
    total = n.sum(axis=0)
    p = np.divide(successes.sum(axis=0), total, out=np.zeros_like(total), where=total > 0)
    spread = p * (1.0 - p)
    usable = (total > 0) & (spread > 0)
    if not np.any(usable):
        return max_strength
    rate = np.divide(successes, n, out=np.zeros_like(n), where=n > 0)
    q = np.sum(n * (rate - p) ** 2, axis=0)[usable] / spread[usable]
    cells = np.sum(n > 0, axis=0)[usable]
    excess = np.sum(q - (cells - 1))
    denom = np.sum(total[usable] - np.sum(n**2, axis=0)[usable] / total[usable])
    if denom <= 0 or excess <= 0:
        return max_strength
    ratio = excess / denom  # estimates 1 / (tau + 1)
    tau = 1.0 / ratio - 1.0 if ratio < 1.0 else 0.0
    return float(np.clip(tau, min_strength, max_strength))


def pooled_evidence(
    cell_successes: NDArray[np.float64],
    cell_trials: NDArray[np.float64],
    campaign_successes: NDArray[np.float64],
    campaign_trials: NDArray[np.float64],
    strength: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each cell's evidence with its prior from the rest of the campaign added, as
    (successes, trials) of shape ``(cells, arms)`` (fractional), ready for Thompson
    sampling's Beta(1 + s, 1 + n - s)."""
    rest_s = np.maximum(campaign_successes[None, :] - cell_successes, 0.0)
    rest_n = np.maximum(campaign_trials[None, :] - cell_trials, 0.0)
    rest_s = successes_within(rest_s, rest_n)
    mean = (1.0 + rest_s) / (2.0 + rest_n)
    weight = np.minimum(strength, rest_n)
    return cell_successes + weight * mean, cell_trials + weight
