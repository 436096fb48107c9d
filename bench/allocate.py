"""In-process allocation speed: adgen's allocator beside MABWiser's Thompson sampling.

For K = 10, 100 and 1,000 arms with the same evidence, measures decisions per second and
p50/p99 latency of ``Allocator.allocate`` (a Thompson-sampling choice, its propensity and
a fresh impression id; no database on this path), of the bare policy ``choose()``, and of
``MABWiser``'s ``MAB.predict()`` with ``LearningPolicy.ThompsonSampling``, all in this
process, pinned to one core. Also reports the cost of one posterior refresh (database
load + Monte Carlo propensities), which the allocator pays in the background once per
``refresh_interval_s``.

MABWiser comes with the project's ``bench`` extra (``pip install -e '.[bench]'``, part of
``make install``). Without it the MABWiser columns are empty.

    python bench/allocate.py [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from _report import emit, table  # bench/_report.py, beside this script

from adgen.allocator import Allocator
from adgen.bandit import ThompsonSampling
from adgen.brief import Brief
from adgen.db import migrate
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import ArmStats
from adgen.settings import Settings

MABWISER_HINT = "MABWiser is not installed: `pip install -e '.[bench]'` to compare with it"


def evidence(k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-arm (successes, trials): 500-5,000 impressions each at CTRs of 2-6%."""
    trials = rng.integers(500, 5000, size=k)
    successes = rng.binomial(trials, rng.uniform(0.02, 0.06, size=k))
    return successes, trials


def timed_loop(fn: Callable[[], object], n: int, budget_s: float) -> tuple[float, np.ndarray]:
    """(calls per second over an untimed-per-call loop, per-call latencies in µs)."""
    start = time.perf_counter()
    done = 0
    while done < n:
        for _ in range(min(1000, n - done)):
            fn()
        done += min(1000, n - done)
        if time.perf_counter() - start > budget_s:
            break
    rate = done / (time.perf_counter() - start)
    lat = np.empty(min(done, 20_000))
    clock = time.perf_counter_ns
    for i in range(lat.size):
        t0 = clock()
        fn()
        lat[i] = clock() - t0
    return rate, lat / 1000.0


def adgen_allocator(
    k: int, s: np.ndarray, n: np.ndarray, tmp: Path, seed: int
) -> tuple[Allocator, int, float]:
    """An allocator over one campaign of ``k`` variants with this evidence (SQLite)."""
    url = f"sqlite:///{tmp / f'k{k}.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    brief = Brief(name=f"bench {k}", product="shoes", brand="Acme", audience="runners")
    with transaction(sessions) as session:
        cid = create_campaign(session, brief).id
        ids = [v.id for v in add_variants(session, cid, [f"variant {i}" for i in range(k)])]
        session.execute(
            sa.update(ArmStats),
            [{"variant_id": v, "impressions": int(t), "clicks": int(c)}
             for v, t, c in zip(ids, n, s, strict=True)],
        )
    settings = Settings(var_dir=tmp, database_url=url)
    allocator = Allocator(sessions, settings, np.random.default_rng(seed))
    t0 = time.perf_counter()
    assert allocator.refresh()
    refresh_ms = (time.perf_counter() - t0) * 1000
    return allocator, cid, refresh_ms


def mabwiser_predict(
    k: int, s: np.ndarray, n: np.ndarray, seed: int
) -> Callable[[], object] | None:
    """MABWiser Thompson sampling fitted on the same evidence, or None if not installed."""
    try:
        from mabwiser.mab import MAB, LearningPolicy
    except ImportError:
        return None
    decisions = np.repeat(np.arange(k), n)
    rewards = np.zeros(decisions.size, dtype=int)
    offsets = np.concatenate([[0], np.cumsum(n)[:-1]])
    for off, clicks in zip(offsets, s, strict=True):
        rewards[off : off + clicks] = 1
    mab = MAB(arms=list(range(k)), learning_policy=LearningPolicy.ThompsonSampling(), seed=seed)
    mab.fit(decisions, rewards)
    return mab.predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    n_calls = 20_000 if args.quick else 300_000
    budget = 1.0 if args.quick else 10.0
    rng = np.random.default_rng(args.seed)
    results: list[dict[str, Any]] = []
    have_mabwiser = True
    with tempfile.TemporaryDirectory() as tmp:
        for k in (10, 100, 1000):
            s, n = evidence(k, rng)
            allocator, cid, refresh_ms = adgen_allocator(k, s, n, Path(tmp), args.seed)
            rate, lat = timed_loop(partial(allocator.allocate, cid), n_calls, budget)
            policy = ThompsonSampling(k, np.random.default_rng(args.seed))
            policy.set_evidence(s, n)
            t0 = time.perf_counter()
            policy.probabilities()
            mc_ms = (time.perf_counter() - t0) * 1000
            policy_rate, _ = timed_loop(policy.choose, n_calls, budget)
            predict = mabwiser_predict(k, s, n, args.seed)
            m_rate = m_p50 = None
            if predict is None:
                have_mabwiser = False
            else:
                m_n = n_calls // (10 if k < 1000 else 100)
                m_rate, m_lat = timed_loop(predict, m_n, budget / 2)
                m_p50 = float(np.percentile(m_lat, 50))
            results.append({
                "K": k,
                "decisions_per_s": round(rate),
                "p50_us": round(float(np.percentile(lat, 50)), 2),
                "p99_us": round(float(np.percentile(lat, 99)), 2),
                "mabwiser_decisions_per_s": round(m_rate) if m_rate else None,
                "mabwiser_p50_us": round(m_p50, 1) if m_p50 else None,
                "ratio_to_mabwiser": round(rate / m_rate, 1) if m_rate else None,
                "policy_choose_per_s": round(policy_rate),
                "refresh_ms": round(refresh_ms, 2),
                "monte_carlo_ms": round(mc_ms, 2),
            })
    table(
        "in-process allocation on one core: adgen Allocator.allocate vs MABWiser TS predict",
        ["K", "adgen decisions/s", "p50 µs", "p99 µs", "MABWiser /s", "MABWiser p50 µs",
         "ratio", "policy.choose /s", "refresh ms", "of which MC ms"],
        [[r["K"], r["decisions_per_s"], r["p50_us"], r["p99_us"], r["mabwiser_decisions_per_s"],
          r["mabwiser_p50_us"], r["ratio_to_mabwiser"], r["policy_choose_per_s"],
          r["refresh_ms"], r["monte_carlo_ms"]] for r in results],
    )
    if not have_mabwiser:
        print(MABWISER_HINT)
    emit({"bench": "allocate", "quick": args.quick, "seed": args.seed,
          "mabwiser": have_mabwiser, "results": results})


if __name__ == "__main__":
    main()
