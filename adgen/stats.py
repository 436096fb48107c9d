"""The evidence arithmetic: successes out of trials and their Beta posteriors (numpy, scipy).

A variant with ``s`` successes in ``n`` trials has the posterior Beta(1 + s, 1 + n - s)
under the uniform prior the API, the analysts' views and the bandit use. Every reader of
``arm_stats`` counts successes with :func:`successes_within` first: a click ingested before
its impression, or an impression lost, can leave more successes than trials for a while.
These functions report on the posterior for people (means, credible intervals, the
promotion gate); the bandit samples from the same posterior in :mod:`adgen.bandit`.
"""

from __future__ import annotations

from typing import overload

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, special

#: Above this many terms the exact sum gives way to quadrature (same answer, less memory).
EXACT_SUM_MAX_TERMS = 200_000

#: The uniform prior Beta(1, 1): pseudo-successes and pseudo-failures.
UNIFORM_PRIOR: tuple[float, float] = (1.0, 1.0)


@overload
def successes_within(successes: int, trials: int) -> int: ...
@overload
def successes_within(successes: float, trials: float) -> float: ...
@overload
def successes_within(
    successes: NDArray[np.float64], trials: NDArray[np.float64]
) -> NDArray[np.float64]: ...
def successes_within(
    successes: float | NDArray[np.float64], trials: float | NDArray[np.float64]
) -> float | NDArray[np.float64]:
    """Successes counted against their trials: never more than the trials (vectorised).

    ``arm_stats`` can briefly hold more clicks than impressions (a click ingested before its
    impression, an impression lost); every reader counts evidence through this one rule
    instead of failing on it.
    """
    if isinstance(successes, np.ndarray) or isinstance(trials, np.ndarray):
        return np.minimum(np.asarray(successes, np.float64), np.asarray(trials, np.float64))
    return min(successes, trials)


def _params(
    successes: ArrayLike, trials: ArrayLike, prior: tuple[float, float] = UNIFORM_PRIOR
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    s = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(n))):
        raise ValueError(f"successes and trials must be finite, got {successes!r} and {trials!r}")
    if np.any(s < 0) or np.any(n < 0):
        raise ValueError(f"successes and trials must be >= 0, got {successes!r} and {trials!r}")
    if np.any(s > n):
        raise ValueError(f"successes ({successes!r}) cannot exceed trials ({trials!r})")
    a0, b0 = prior
    if not (a0 > 0 and b0 > 0):
        raise ValueError(f"prior pseudo-counts must be > 0, got {prior!r}")
    return a0 + s, b0 + n - s


def posterior_mean(
    successes: ArrayLike, trials: ArrayLike, prior: tuple[float, float] = UNIFORM_PRIOR
) -> float | NDArray[np.float64]:
    """Mean of Beta(a0 + s, b0 + n - s), ``(a0 + s) / (a0 + b0 + n)``; vectorised.

    ``prior`` (a0, b0) is Beta(1, 1) for people and the bandit; the promotion gate passes
    its empirical-Bayes prior (see :class:`adgen.model.comparison.Comparison`).
    """
    a, b = _params(successes, trials, prior)
    out = a / (a + b)
    return float(out) if out.ndim == 0 else out


def credible_interval(
    successes: ArrayLike, trials: ArrayLike, level: float = 0.95
) -> tuple[float, float] | tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Equal-tailed credible interval of Beta(1 + s, 1 + n - s) (exact quantiles); vectorised."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    a, b = _params(successes, trials)
    tail = (1.0 - level) / 2.0
    lo = special.betaincinv(a, b, tail)
    hi = special.betaincinv(a, b, 1.0 - tail)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def prob_better(s_a: float, n_a: float, s_b: float, n_b: float) -> float:
    """P(rate_a > rate_b) for independent Beta(1, 1)-prior posteriors of two variants.

    Integer counts use the exact finite sum (Miller's formula, in log space, summing over the
    smallest of the four parameters); fractional counts (discounted evidence) or more than
    ``EXACT_SUM_MAX_TERMS`` terms use adaptive quadrature in the quantile space of the
    narrower posterior. Accurate to about 1e-9 absolute for counts in the millions.
    """
    (a1, b1), (a2, b2) = (_scalar_params(s_a, n_a), _scalar_params(s_b, n_b))
    integral = all(float(x).is_integer() for x in (a1, b1, a2, b2))
    if integral and min(a1, b1, a2, b2) <= EXACT_SUM_MAX_TERMS:
        return _prob_greater_exact(a1, b1, a2, b2)
    return _prob_greater_quad(a1, b1, a2, b2)


def _scalar_params(successes: float, trials: float) -> tuple[float, float]:
    a, b = _params(successes, trials)
    if a.ndim != 0:
        raise ValueError(f"prob_better takes scalar counts, got {successes!r} and {trials!r}")
    return float(a), float(b)


def _miller_sum(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(Y > X) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2), integer a2: a sum of a2 terms."""
    i = np.arange(int(a2), dtype=np.float64)
    log_terms = (
        special.betaln(a1 + i, b1 + b2)
        - np.log(b2 + i)
        - special.betaln(1.0 + i, b2)
        - special.betaln(a1, b1)
    )
    return float(np.exp(special.logsumexp(log_terms)))


def _prob_greater_exact(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X > Y) for X ~ Beta(a1, b1), Y ~ Beta(a2, b2), all integer, by the shortest sum."""
    # P(X > Y) = P(Y' > X') with X' = 1 - X ~ Beta(b1, a1), Y' = 1 - Y ~ Beta(b2, a2).
    forms = {
        a1: lambda: _miller_sum(a2, b2, a1, b1),  # P(X > Y) directly, a1 terms
        a2: lambda: 1.0 - _miller_sum(a1, b1, a2, b2),  # 1 - P(Y > X), a2 terms
        b2: lambda: _miller_sum(b1, a1, b2, a2),  # P(1-Y > 1-X), b2 terms
        b1: lambda: 1.0 - _miller_sum(b2, a2, b1, a1),  # 1 - P(1-X > 1-Y), b1 terms
    }
    p = forms[min(forms)]()
    return min(1.0, max(0.0, p))


def _prob_greater_quad(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X > Y) by quadrature over the quantiles of the narrower of the two posteriors."""
    var1 = a1 * b1 / ((a1 + b1) ** 2 * (a1 + b1 + 1.0))
    var2 = a2 * b2 / ((a2 + b2) ** 2 * (a2 + b2 + 1.0))
    if var1 <= var2:
        # P(X > Y) = E_X[F_Y(X)] = int_0^1 F_Y(F_X^{-1}(u)) du
        def f(u: float) -> float:
            return float(special.betainc(a2, b2, special.betaincinv(a1, b1, u)))
    else:
        # P(X > Y) = E_Y[1 - F_X(Y)] = int_0^1 S_X(F_Y^{-1}(u)) du
        def f(u: float) -> float:
            return float(special.betaincc(a1, b1, special.betaincinv(a2, b2, u)))

    value, _err = integrate.quad(f, 0.0, 1.0, limit=200, epsabs=1e-12, epsrel=1e-10)
    return min(1.0, max(0.0, value))


# --- one definition per reported figure (API, CLI, console and analyst views) ---------------
#: Joint posterior draws behind ``prob_best``: its Monte Carlo error is below 0.006.
PROB_BEST_SAMPLES = 20_000


def ctr(clicks: int, impressions: int) -> float | None:
    """Click-through rate: clicks / impressions; None before any impression."""
    return clicks / impressions if impressions else None


def conversion_rate(conversions: int, impressions: int) -> float | None:
    """Conversion rate: conversions / impressions (not / clicks); None before any impression."""
    return conversions / impressions if impressions else None


def ctr_interval(clicks: int, impressions: int) -> tuple[float, float]:
    """The CTR's 95% credible interval: exact quantiles of Beta(1 + c, 1 + n - c).

    Clicks above impressions (a click ingested before its impression) count as ``n``.
    ``arm_stats.ctr_ci95_low/high`` store this for the analyst views.
    """
    lo, hi = credible_interval(successes_within(clicks, impressions), impressions)
    return float(lo), float(hi)


def prob_best(
    successes: ArrayLike, trials: ArrayLike, *, samples: int = PROB_BEST_SAMPLES
) -> NDArray[np.float64]:
    """P(each arm has the highest rate) under Beta(1 + s, 1 + n - s) posteriors.

    Monte Carlo from ``samples`` joint draws with a fixed seed, so the same counts always
    give the same figure; ties between identical posteriors are shared equally.
    """
    a, b = _params(successes, trials)
    if a.ndim != 1 or a.size == 0:
        raise ValueError("prob_best takes one non-empty vector of counts per arm")
    draws = np.random.default_rng(0).beta(a, b, size=(samples, a.size))
    wins = np.bincount(np.argmax(draws, axis=1), minlength=a.size) / samples
    keys = np.stack([a, b], axis=1)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.ravel()
    return np.asarray(np.bincount(group, weights=wins)[group] / np.bincount(group)[group])
