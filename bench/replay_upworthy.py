"""Replaying real headline A/B tests with adgen's Thompson sampling instead of a uniform split.

For every test, its packages are the arms, each package's observed click-through rate is
its true click probability, and the test's real total impressions are the horizon; Upworthy
itself split traffic uniformly. Simulated, with ``--seeds`` independent runs per test:

- ``uniform``: the even split (its expected clicks, exact);
- ``ts``: sequential Thompson sampling, posteriors updated after every impression
  (:func:`adgen.bandit.thompson.sample_choice`);
- ``ts_batched``: adgen's served policy: every ``--batch`` impressions the allocator
  refreshes its posteriors and serves the next batch from the Monte Carlo probabilities of
  being best (:func:`adgen.bandit.thompson.win_probabilities`, ``--samples`` draws);
- ``best``: always the package with the highest CTR (the ceiling; regret is measured to it).

Clicks are expected clicks given the impressions each package got (sum of impressions ×
CTR), which removes the coin-flip noise of the clicks themselves. Tests run side by side,
bucketed by their number of packages, all seeds at once (numpy arrays). Observed CTRs are
noisy estimates, so the spread between packages (and every gain over uniform, the
ceiling's too) is somewhat larger in this replay than it was in truth. The full file takes
about 9 CPU-minutes: sequential TS draws one posterior sample per package per impression.

Data: the Upworthy Research Archive (Matias, Munger, Aubin Le Quere, Ebersole, 2021,
Scientific Data 8:195, doi:10.1038/s41597-021-00934-7), exploratory packages, licensed
CC BY 4.0, vendored in ``data/upworthy/`` (read by default). Any CSV with the same
columns works (``--data``).

    python bench/replay_upworthy.py [--data FILE] [--quick] [--seed N] [--seeds S]
                                    [--batch B] [--samples M]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _report import emit, table  # bench/_report.py, beside this script
from reward_upworthy import ATTRIBUTION, DEFAULT_DATA  # bench/, beside this script
from tqdm import tqdm

from adgen.bandit.thompson import sample_choice, win_probabilities
from adgen.history.reader import ColumnMap, read_experiments

QUICK_TESTS = 30
BATCH = 1000
SAMPLES = 1000
MAX_DRAW_BYTES = 256 << 20  # memory for one block of Monte Carlo draws


@dataclass(frozen=True)
class Bucket:
    """Tests with the same number of packages: true rates (tests, K) and horizons (tests,)."""

    p: np.ndarray
    horizon: np.ndarray


def buckets(path: Path, quick: bool, rng: np.random.Generator) -> list[Bucket]:
    """Tests of the file, grouped by number of packages, each sorted by horizon (longest first)."""
    parsed = read_experiments(path, ColumnMap(group=None, week=None))
    arms: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in parsed.rows:
        if r.impressions > 0:
            arms[r.test_id].append((r.clicks, r.impressions))
    tests = sorted(t for t, a in arms.items() if len(a) >= 2)
    if quick:
        tests = sorted(rng.choice(tests, min(QUICK_TESTS, len(tests)), replace=False))
    by_k: dict[int, list[tuple[np.ndarray, int]]] = defaultdict(list)
    for t in tests:
        clicks, impressions = np.array(arms[t], dtype=np.float64).T
        by_k[len(clicks)].append((clicks / impressions, int(impressions.sum())))
    out = []
    for _k, items in sorted(by_k.items()):
        items.sort(key=lambda item: -item[1])
        out.append(Bucket(np.stack([p for p, _ in items]), np.array([h for _, h in items])))
    return out


def _active(horizon: np.ndarray, t: int) -> int:
    """How many tests (sorted by horizon, longest first) still run at step t."""
    return int(np.searchsorted(-horizon, -t, side="left"))


def sequential(bucket: Bucket, seeds: int, rng: np.random.Generator) -> np.ndarray:
    """Impressions per package, (tests, seeds, K), of TS updated after every impression."""
    m, k = bucket.p.shape
    s = np.zeros((m, seeds, k))
    n = np.zeros((m, seeds, k))
    p = np.ascontiguousarray(np.broadcast_to(bucket.p[:, None, :], (m, seeds, k))).reshape(-1)
    base = np.arange(m * seeds) * k
    s_flat, n_flat = s.reshape(-1), n.reshape(-1)
    for t in range(int(bucket.horizon[0])):
        a = _active(bucket.horizon, t + 1)
        arm = sample_choice(s[:a], n[:a], rng).reshape(-1)
        idx = base[: a * seeds] + arm
        s_flat[idx] += rng.random(a * seeds) < p[idx]
        n_flat[idx] += 1.0
    return n


def batched(
    bucket: Bucket, seeds: int, rng: np.random.Generator, batch: int, samples: int
) -> np.ndarray:
    """Impressions per package, (tests, seeds, K), of adgen's served policy."""
    m, k = bucket.p.shape
    s = np.zeros((m, seeds, k))
    n = np.zeros((m, seeds, k))
    p = np.broadcast_to(bucket.p[:, None, :], (m, seeds, k))
    rows = max(1, MAX_DRAW_BYTES // (8 * samples * seeds * k))
    for t in range(0, int(bucket.horizon[0]), batch):
        a = _active(bucket.horizon, t + 1)
        size = np.minimum(bucket.horizon[:a] - t, batch)[:, None]
        for lo in range(0, a, rows):
            hi = min(a, lo + rows)
            w = win_probabilities(s[lo:hi], n[lo:hi], rng, samples)
            plays = rng.multinomial(np.broadcast_to(size[lo:hi], (hi - lo, seeds)), w)
            s[lo:hi] += rng.binomial(plays, p[lo:hi])
            n[lo:hi] += plays
    return n


@dataclass
class Totals:
    """Sums over tests (means over seeds) of one policy."""

    clicks: float = 0.0
    best_identified: float = 0.0


def summarise(bucket: Bucket, plays: np.ndarray, totals: Totals) -> None:
    """Add a bucket's expected clicks and best-package identification to ``totals``."""
    clicks = (plays * bucket.p[:, None, :]).sum(axis=2)  # (tests, seeds)
    totals.clicks += float(clicks.mean(axis=1).sum())
    best = bucket.p.max(axis=1, keepdims=True)
    most_served = plays.argmax(axis=2)  # (tests, seeds)
    hit = np.take_along_axis(bucket.p, most_served, axis=1) == best  # ties with the best count
    totals.best_identified += float(hit.mean(axis=1).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV(.gz)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TESTS} tests, 4 seeds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=None, help="runs per test (20)")
    parser.add_argument("--batch", type=int, default=BATCH, help="impressions per refresh")
    parser.add_argument("--samples", type=int, default=SAMPLES, help="draws per refresh")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(ATTRIBUTION)
    seeds = args.seeds or (4 if args.quick else 20)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    groups = buckets(args.data, args.quick, rng)
    n_tests = sum(len(b.horizon) for b in groups)
    impressions = float(sum(b.horizon.sum() for b in groups))
    uniform = float(sum((b.p.mean(axis=1) * b.horizon).sum() for b in groups))
    best = float(sum((b.p.max(axis=1) * b.horizon).sum() for b in groups))
    ts, tsb = Totals(), Totals()
    timings = {"ts": 0.0, "ts_batched": 0.0}
    bar = tqdm(groups, desc="tests by number of packages", unit="bucket", disable=args.quick)
    for bucket in bar:
        bar.set_postfix(packages=bucket.p.shape[1], tests=len(bucket.horizon))
        began = time.perf_counter()
        summarise(bucket, sequential(bucket, seeds, rng), ts)
        timings["ts"] += time.perf_counter() - began
        began = time.perf_counter()
        summarise(bucket, batched(bucket, seeds, rng, args.batch, args.samples), tsb)
        timings["ts_batched"] += time.perf_counter() - began
    elapsed = time.perf_counter() - started

    def gain(clicks: float) -> float:
        return clicks / uniform - 1.0

    print(
        f"{n_tests} tests, {impressions:,.0f} impressions, {seeds} seeds; "
        f"batched: refresh every {args.batch} impressions, {args.samples} draws; {elapsed:.0f} s"
    )
    table(
        "expected clicks summed over tests (mean over seeds)",
        ["policy", "clicks", "gain vs uniform", "regret vs best", "best identified", "seconds"],
        [
            ["uniform (Upworthy)", uniform, 0.0, best - uniform, None, None],
            ["TS sequential", ts.clicks, gain(ts.clicks), best - ts.clicks,
             ts.best_identified / n_tests, timings["ts"]],
            ["TS batched (adgen)", tsb.clicks, gain(tsb.clicks), best - tsb.clicks,
             tsb.best_identified / n_tests, timings["ts_batched"]],
            ["always best", best, gain(best), 0.0, 1.0, None],
        ],
    )
    emit({
        "bench": "replay_upworthy",
        "data": args.data.name,
        "seed": args.seed,
        "quick": args.quick,
        "tests": n_tests,
        "impressions": impressions,
        "seeds": seeds,
        "batch": args.batch,
        "samples": args.samples,
        "clicks_uniform": uniform,
        "clicks_ts": ts.clicks,
        "clicks_ts_batched": tsb.clicks,
        "clicks_best": best,
        "gain_ts": gain(ts.clicks),
        "gain_ts_batched": gain(tsb.clicks),
        "gain_best": gain(best),
        "best_identified_share": ts.best_identified / n_tests,
        "best_identified_share_batched": tsb.best_identified / n_tests,
        "regret_ts": best - ts.clicks,
        "regret_ts_batched": best - tsb.clicks,
        "regret_uniform": best - uniform,
        "seconds": round(elapsed, 1),
        "attribution": ATTRIBUTION,
    })


if __name__ == "__main__":
    main()
