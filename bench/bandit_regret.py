"""Cumulative regret of Thompson sampling and baselines on Bernoulli bandits.

The problems of Chapelle & Li (2011), "An Empirical Evaluation of Thompson Sampling":
K = 10 and K = 100 arms, the best at 0.5 and the others at 0.5 - eps, eps = 0.1 and 0.02;
plus an ad-like regime, K = 10 with the best at 0.05 and the others at 0.04. For each,
the mean pseudo-regret (sum of the gaps of the arms played) after the horizon, over
seeds, of:

- ``ts``: sequential Thompson sampling, posteriors updated after every impression;
- ``ts_batched``: adgen's served policy, posteriors refreshed every 1,000 impressions and
  choices drawn in between from the Monte Carlo propensities (as the allocator does);
- ``ucb1``, ``egreedy`` (epsilon = 0.1) and ``uniform`` (its expected regret, exact);
- ``lower_bound``: the Lai-Robbins asymptotic bound at the horizon,
  sum over suboptimal arms of gap * log(T) / KL(p_i, p*).

The seeds run side by side (numpy arrays of shape seeds x K); the best arm sits at a
random position in each seed so that tie-breaking favours nobody.

    python bench/bandit_regret.py [--quick] [--seed N] [--horizon T] [--seeds S]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from _report import emit, table  # bench/_report.py, beside this script

from adgen.bandit.baselines import empirical_means, ucb1_index
from adgen.bandit.thompson import sample_choice, win_probabilities

EPSILON_GREEDY = 0.1
BATCH = 1000
SAMPLES = 2000  # Monte Carlo draws per refresh, as settings.propensity_samples


@dataclass(frozen=True)
class Problem:
    """K Bernoulli arms: one at ``best``, the others at ``best - eps``."""

    k: int
    best: float
    eps: float

    def lai_robbins(self, horizon: int) -> float:
        """sum over suboptimal arms of gap * log(T) / KL(p_i || p*)."""
        p, q = self.best - self.eps, self.best
        kl = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
        return (self.k - 1) * self.eps * math.log(horizon) / kl

    def uniform_regret(self, horizon: int) -> float:
        """Expected regret of uniform allocation: T times the mean gap."""
        return horizon * self.eps * (self.k - 1) / self.k


PROBLEMS = [Problem(10, 0.5, 0.1), Problem(10, 0.5, 0.02), Problem(100, 0.5, 0.1),
            Problem(100, 0.5, 0.02), Problem(10, 0.05, 0.01)]


def world(problem: Problem, seeds: int, rng: np.random.Generator) -> np.ndarray:
    """True rates, shape (seeds, K), the best arm at a random position in each row."""
    p = np.full((seeds, problem.k), problem.best - problem.eps)
    p[np.arange(seeds), rng.integers(problem.k, size=seeds)] = problem.best
    return p


def sequential(p: np.ndarray, horizon: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-seed regret of sequential TS, UCB1 and epsilon-greedy (one loop over time)."""
    seeds, k = p.shape
    rows = np.arange(seeds)
    gaps = p.max(axis=1, keepdims=True) - p
    names = ("ts", "ucb1", "egreedy")
    s = {m: np.zeros((seeds, k)) for m in names}
    n = {m: np.zeros((seeds, k)) for m in names}
    regret = {m: np.zeros(seeds) for m in names}
    for _ in range(horizon):
        explore = rng.random(seeds) < EPSILON_GREEDY
        arms = {
            "ts": sample_choice(s["ts"], n["ts"], rng),
            "ucb1": np.argmax(ucb1_index(s["ucb1"], n["ucb1"]), axis=1),
            "egreedy": np.where(
                explore,
                rng.integers(k, size=seeds),
                np.argmax(empirical_means(s["egreedy"], n["egreedy"]), axis=1),
            ),
        }
        u = rng.random(seeds)  # the same world draw for every policy (common random numbers)
        for m, a in arms.items():
            s[m][rows, a] += u < p[rows, a]
            n[m][rows, a] += 1.0
            regret[m] += gaps[rows, a]
    return regret


def batched(
    p: np.ndarray, horizon: int, rng: np.random.Generator, batch: int = BATCH
) -> np.ndarray:
    """Per-seed regret of TS refreshed every ``batch`` impressions, served from propensities."""
    seeds, k = p.shape
    gaps = p.max(axis=1, keepdims=True) - p
    s = np.zeros((seeds, k))
    n = np.zeros((seeds, k))
    regret = np.zeros(seeds)
    for start in range(0, horizon, batch):
        size = min(batch, horizon - start)
        probs = win_probabilities(s, n, rng, SAMPLES)
        cdf = np.cumsum(probs, axis=1)
        cdf /= cdf[:, -1:]
        u = rng.random((seeds, size))
        arms = np.stack([np.searchsorted(cdf[i], u[i], side="right") for i in range(seeds)])
        plays = np.stack([np.bincount(arms[i], minlength=k) for i in range(seeds)])
        wins = rng.binomial(plays, p)
        s += wins
        n += plays
        regret += (plays * gaps).sum(axis=1)
    return regret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="horizon 3,000, 4 seeds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--horizon", type=int, default=None, help="impressions (100,000)")
    parser.add_argument("--seeds", type=int, default=None, help="independent runs (20)")
    args = parser.parse_args()
    horizon = args.horizon or (3_000 if args.quick else 100_000)
    n_seeds = args.seeds or (4 if args.quick else 20)
    rng = np.random.default_rng(args.seed)
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for problem in PROBLEMS:
        p = world(problem, n_seeds, rng)
        seq = sequential(p, horizon, rng)
        bat = batched(p, horizon, rng)
        row = {
            "K": problem.k,
            "best": problem.best,
            "eps": problem.eps,
            "ts": float(seq["ts"].mean()),
            "ts_batched": float(bat.mean()),
            "ucb1": float(seq["ucb1"].mean()),
            "egreedy": float(seq["egreedy"].mean()),
            "uniform": problem.uniform_regret(horizon),
            "lower_bound": problem.lai_robbins(horizon),
            "ts_sem": float(seq["ts"].std(ddof=1) / math.sqrt(n_seeds)),
            "ts_batched_sem": float(bat.std(ddof=1) / math.sqrt(n_seeds)),
        }
        row["bound_applies"] = row["lower_bound"] < row["uniform"]
        row["ts_over_bound"] = row["ts"] / row["lower_bound"]
        row["batched_over_ts"] = row["ts_batched"] / row["ts"]
        results.append(row)
    elapsed = time.perf_counter() - started
    table(
        f"mean cumulative regret after {horizon:,} impressions, {n_seeds} seeds "
        f"({elapsed:.0f} s)",
        ["K", "best", "eps", "TS", "TS batched", "UCB1", "e-greedy", "uniform",
         "Lai-Robbins", "TS/bound", "batched/TS"],
        [[r["K"], r["best"], r["eps"], r["ts"], r["ts_batched"], r["ucb1"], r["egreedy"],
          r["uniform"], r["lower_bound"],
          r["ts_over_bound"] if r["bound_applies"] else None, r["batched_over_ts"]]
         for r in results],
    )
    print("TS/bound is shown where the bound is below uniform's regret (else it says nothing).")
    emit({"bench": "bandit_regret", "horizon": horizon, "seeds": n_seeds, "seed": args.seed,
          "batch": BATCH, "results": results})


if __name__ == "__main__":
    main()
