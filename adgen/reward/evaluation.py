"""How well scores rank and predict click-through on held-out arms (pure: numpy, scipy).

- pairwise accuracy: over pairs of different texts in the same group (campaign, or test and
  image), the share where the higher score went with the higher observed rate (pairs with
  equal rates are left out, equal scores count one half); also over *significant* pairs,
  whose difference a two-proportion z-test puts at p < 0.05;
- AUC on impression-level outcomes: every click a positive and every other impression a
  negative, carrying its arm's score (counts expanded as weights);
- Spearman correlation of score and observed rate within each group of three or more
  different texts, averaged over groups;
- calibration: binned expected calibration error (impression-weighted |predicted − observed|
  over ten quantile bins of the prediction).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

SIGNIFICANCE = 0.05


def within_group_pairs(groups: Sequence[Hashable], texts: Sequence[str]) -> NDArray[np.int64]:
    """Index pairs (i, j), i < j, of arms in the same group with different texts."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    pairs = [
        (a, b)
        for idx in members.values()
        for k, a in enumerate(idx)
        for b in idx[k + 1 :]
        if texts[a] != texts[b]
    ]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def two_proportion_p(
    s1: ArrayLike, n1: ArrayLike, s2: ArrayLike, n2: ArrayLike
) -> NDArray[np.float64]:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 where it is undefined)."""
    s1, n1, s2, n2 = (np.asarray(x, dtype=np.float64) for x in (s1, n1, s2, n2))
    pooled = (s1 + s2) / np.maximum(n1 + n2, 1.0)
    se = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(n1, 1.0) + 1 / np.maximum(n2, 1.0)))
    diff = s1 / np.maximum(n1, 1.0) - s2 / np.maximum(n2, 1.0)
    z = np.divide(diff, se, out=np.zeros_like(diff), where=se > 0)
    return np.where(se > 0, 2 * stats.norm.sf(np.abs(z)), 1.0)


def pairwise_accuracy(
    scores: ArrayLike, rates: ArrayLike, pairs: NDArray[np.int64]
) -> tuple[float | None, int]:
    """(share of pairs ordered like the rates, number of pairs with unequal rates)."""
    s = np.asarray(scores, dtype=np.float64)
    r = np.asarray(rates, dtype=np.float64)
    if len(pairs) == 0:
        return None, 0
    truth = np.sign(r[pairs[:, 0]] - r[pairs[:, 1]])
    guess = np.sign(s[pairs[:, 0]] - s[pairs[:, 1]])
    keep = truth != 0
    if not keep.any():
        return None, 0
    right = np.where(guess[keep] == 0, 0.5, (guess[keep] == truth[keep]).astype(np.float64))
    return float(right.mean()), int(keep.sum())


def impression_auc(scores: ArrayLike, successes: ArrayLike, trials: ArrayLike) -> float | None:
    """AUC of ``scores`` for clicks vs. non-clicks, each impression counted once."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(successes, dtype=np.float64)
    neg = np.asarray(trials, dtype=np.float64) - pos
    if pos.sum() <= 0 or neg.sum() <= 0:
        return None
    order = np.argsort(s, kind="mergesort")
    s, pos, neg = s[order], pos[order], neg[order]
    # Tied scores form one block: negatives below the block count fully, within it half.
    _, start = np.unique(s, return_index=True)
    block_pos = np.add.reduceat(pos, start)
    block_neg = np.add.reduceat(neg, start)
    neg_below = np.concatenate([[0.0], np.cumsum(block_neg)[:-1]])
    wins = (block_pos * (neg_below + 0.5 * block_neg)).sum()
    return float(wins / (pos.sum() * neg.sum()))


def within_group_spearman(
    scores: ArrayLike, rates: ArrayLike, groups: Sequence[Hashable], texts: Sequence[str]
) -> tuple[float | None, int]:
    """(mean Spearman rho of score vs. rate over groups of 3+ different texts, groups used)."""
    s = np.asarray(scores, dtype=np.float64)
    r = np.asarray(rates, dtype=np.float64)
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    rhos = []
    for idx in members.values():
        if len({texts[i] for i in idx}) < 3:
            continue
        if np.ptp(s[idx]) == 0 or np.ptp(r[idx]) == 0:
            continue
        rhos.append(stats.spearmanr(s[idx], r[idx]).statistic)
    if not rhos:
        return None, 0
    return float(np.mean(rhos)), len(rhos)


def binned_ece(
    predicted: ArrayLike, successes: ArrayLike, trials: ArrayLike, bins: int = 10
) -> float | None:
    """Impression-weighted mean |predicted rate − observed rate| over quantile bins."""
    p = np.asarray(predicted, dtype=np.float64)
    s = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if n.sum() <= 0:
        return None
    order = np.argsort(p, kind="mergesort")
    total = 0.0
    for chunk in np.array_split(order, min(bins, len(order))):
        weight = n[chunk].sum()
        if weight > 0:
            predicted_rate = float((p[chunk] * n[chunk]).sum() / weight)
            total += weight * abs(predicted_rate - s[chunk].sum() / weight)
    return float(total / n.sum())


def evaluate(
    scores: ArrayLike,
    predicted: ArrayLike,
    successes: ArrayLike,
    trials: ArrayLike,
    groups: Sequence[Hashable],
    texts: Sequence[str],
) -> dict[str, Any]:
    """All of the module's figures for one set of held-out arms (None where undefined).

    ``scores`` rank (any scale); ``predicted`` are rates in [0, 1] for calibration.
    """
    s_arr = np.asarray(successes, dtype=np.float64)
    n_arr = np.asarray(trials, dtype=np.float64)
    rates = s_arr / np.maximum(n_arr, 1.0)
    pairs = within_group_pairs(groups, texts)
    acc, n_pairs = pairwise_accuracy(scores, rates, pairs)
    sig_acc, n_sig = None, 0
    if len(pairs):
        p = two_proportion_p(
            s_arr[pairs[:, 0]], n_arr[pairs[:, 0]], s_arr[pairs[:, 1]], n_arr[pairs[:, 1]]
        )
        sig_acc, n_sig = pairwise_accuracy(scores, rates, pairs[p < SIGNIFICANCE])
    rho, n_groups = within_group_spearman(scores, rates, groups, texts)
    return {
        "arms": len(texts),
        "pairs": n_pairs,
        "pairwise_acc": acc,
        "sig_pairs": n_sig,
        "sig_pairwise_acc": sig_acc,
        "auc": impression_auc(scores, s_arr, n_arr),
        "spearman": rho,
        "spearman_groups": n_groups,
        "ece": binned_ece(predicted, s_arr, n_arr),
    }
