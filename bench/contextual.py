"""Contextual allocation: speed of the decision path, and what cells earn when segments
disagree and cost when they do not.

1. Speed: ``Allocator.allocate`` in process on one core at K = 10, for a contextual
   campaign with 20 built cells (contexts cycling over them) beside a non-contextual one,
   in the same run.
2. Quality: the segmented audience (``adgen/data/audiences/segmented.json``: mobile readers
   like short questions, desktop readers long texts with numbers) sends the same traffic
   (same segment sequence, same click draws: common random numbers) to two campaigns with
   the same six variants, one allocating per ``segment`` and one not. Both run through the
   real allocator on SQLite with batched refreshes; the counts it would read from
   ``arm_stats`` / ``cell_stats`` are written directly (no broker: this measures the
   policy, not the pipeline). Clicks and regret (expected clicks lost against the best
   variant of each impression's segment), several seeds.
3. The same with two identical segments: the cost of the extra cells.

    python bench/contextual.py [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from _report import emit, table  # bench/_report.py, beside this script
from allocate import timed_loop  # bench/allocate.py: the same timing loop

from adgen.allocator import Allocator
from adgen.audience import AUDIENCES_DIR, Audience, load_audience
from adgen.brief import Brief
from adgen.db import migrate
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import ArmStats, CellStats
from adgen.settings import Settings

TEXTS = [
    "Acme runners: ready?",
    "Trail shoes? Try Acme",
    "Acme trail shoes with 3 layers of grip and 12 months of warranty for long runs",
    "Run 20 km further in Acme trail shoes built for long weekends",
    "Acme trail shoes",
    "Grip on wet rock with Acme trail shoes, made for every runner out there",
]
CELLS = 20
K_SPEED = 10


class Arena:
    """A SQLite database with one campaign and the real allocator over it."""

    def __init__(self, path: Path, texts: list[str], attributes: list[str] | None, seed: int,
                 samples: int = 1000) -> None:
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        self.sessions = session_factory(make_engine(url))
        with transaction(self.sessions) as session:
            c = create_campaign(session, Brief(name="bench", product="shoes", brand="Acme",
                                               audience="runners"))
            c.context_attributes = attributes
            self.cid = c.id
            self.vids = [v.id for v in add_variants(session, c.id, texts)]
        settings = Settings(var_dir=path.parent, database_url=url, propensity_samples=samples)
        self.allocator = Allocator(self.sessions, settings, np.random.default_rng(seed))
        assert self.allocator.refresh()

    def store(self, arms: dict[int, list[int]], cells: dict[tuple[int, str], list[int]]) -> None:
        """Replace the campaign's counts (what ingest would have written) and refresh."""
        with transaction(self.sessions) as session:
            session.execute(sa.update(ArmStats), [
                {"variant_id": v, "impressions": n, "clicks": c} for v, (n, c) in arms.items()
            ])
            session.execute(sa.delete(CellStats).where(CellStats.campaign_id == self.cid))
            session.add_all(
                CellStats(variant_id=v, cell=cell, campaign_id=self.cid, impressions=n,
                          clicks=c)
                for (v, cell), (n, c) in cells.items()
            )
        assert self.allocator.refresh()


def speed(tmp: Path, seed: int, n_calls: int, budget: float) -> dict[str, Any]:
    """Decisions per second, contextual (20 cells) and not, K = 10, same run."""
    rng = np.random.default_rng(seed)
    texts = [f"variant {i}" for i in range(K_SPEED)]
    plain = Arena(tmp / "speed_plain.db", texts, None, seed)
    ctx = Arena(tmp / "speed_ctx.db", texts, ["placement"], seed)
    arms = {v: [0, 0] for v in ctx.vids}
    cells = {}
    for j in range(CELLS):
        ctr = rng.uniform(0.02, 0.06, K_SPEED)
        for v, p in zip(ctx.vids, ctr, strict=True):
            n = int(rng.integers(200, 2000))
            c = int(rng.binomial(n, p))
            cells[(v, f"placement=p{j}")] = [n, c]
            arms[v][0] += n
            arms[v][1] += c
    plain.store(arms, {})
    t0 = time.perf_counter()
    ctx.store(arms, cells)
    refresh_ms = (time.perf_counter() - t0) * 1000
    assert len(ctx.allocator.cells(ctx.cid)[0]) == CELLS
    contexts = [{"placement": f"p{j}", "device": "ios"} for j in range(CELLS)]
    next_context = itertools.cycle(contexts).__next__
    alloc, cid_p, cid_c = plain.allocator.allocate, plain.cid, ctx.cid
    plain_rate, plain_lat = timed_loop(lambda: alloc(cid_p), n_calls, budget)
    calloc = ctx.allocator.allocate
    ctx_rate, ctx_lat = timed_loop(
        lambda: calloc(cid_c, next_context()), n_calls, budget
    )
    return {
        "K": K_SPEED, "cells": CELLS,
        "contextual_decisions_per_s": round(ctx_rate),
        "contextual_p99_us": round(float(np.percentile(ctx_lat, 99)), 2),
        "plain_decisions_per_s": round(plain_rate),
        "plain_p99_us": round(float(np.percentile(plain_lat, 99)), 2),
        "ratio_to_plain": round(ctx_rate / plain_rate, 3),
        "refresh_ms_20_cells": round(refresh_ms, 1),
    }


def simulate(tmp: Path, audience: Audience, contextual: bool, seed: int, horizon: int,
             batch: int) -> tuple[int, float]:
    """(clicks, regret) of one campaign over the seed's traffic."""
    arena = Arena(tmp / f"{'ctx' if contextual else 'plain'}_{seed}_{audience.name}.db".replace(
        "/", "_"), TEXTS, ["segment"] if contextual else None, seed)
    names = [n for n, _, _ in audience.segments]
    shares = np.array([s for _, s, _ in audience.segments])
    truth = {n: np.array([a.true_ctr(t, "Acme") for t in TEXTS]) for n, _, a in audience.segments}
    traffic = np.random.default_rng(10_000 + seed)  # the same for both campaigns
    segments = traffic.choice(len(names), p=shares, size=horizon)
    draws = traffic.random(horizon)
    index = {v: i for i, v in enumerate(arena.vids)}
    arms = {v: [0, 0] for v in arena.vids}
    cells: dict[tuple[int, str], list[int]] = {}
    clicks, regret = 0, 0.0
    for t in range(horizon):
        seg = names[segments[t]]
        a = arena.allocator.allocate(arena.cid, {"segment": seg})
        p = truth[seg][index[a.variant_id]]
        click = int(draws[t] < p)
        clicks += click
        regret += float(truth[seg].max() - p)
        arms[a.variant_id][0] += 1
        arms[a.variant_id][1] += click
        if a.cell:
            counts = cells.setdefault((a.variant_id, a.cell), [0, 0])
            counts[0] += 1
            counts[1] += click
        if (t + 1) % batch == 0:
            arena.store(arms, cells)
    return clicks, regret


def identical(audience: Audience) -> Audience:
    """Two segments with the same preferences (the first segment's)."""
    _, _, first = audience.segments[0]
    spec = {"base_ctr": first.base_ctr, "noise_std": first.noise_std, "seed": first.seed,
            **first.weights, "segments": {"a": {}, "b": {}}}
    if first.length_target is not None:
        spec["length"] = {"target": first.length_target, "weight": first.length_weight}
    return Audience.from_dict(spec, name="identical")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    horizon, batch, seeds = (3000, 250, 2) if args.quick else (30_000, 500, 5)
    n_calls, budget = (20_000, 1.0) if args.quick else (300_000, 10.0)
    segmented = load_audience(AUDIENCES_DIR / "segmented.json")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        fast = speed(tmp, args.seed, n_calls, budget)
        quality: dict[str, dict[str, Any]] = {}
        for label, audience in (("disagreeing", segmented), ("identical", identical(segmented))):
            runs = {
                mode: [simulate(tmp, audience, mode == "contextual", args.seed + s, horizon,
                                batch) for s in range(seeds)]
                for mode in ("contextual", "plain")
            }
            quality[label] = {
                f"{mode}_{key}": float(np.mean([r[i] for r in res]))
                for mode, res in runs.items() for i, key in ((0, "clicks"), (1, "regret"))
            }
            q = quality[label]
            q["click_gain"] = (q["contextual_clicks"] - q["plain_clicks"]) / q["plain_clicks"]
    table(
        "decision path on one core, K = 10: contextual (20 cells) beside non-contextual",
        ["contextual /s", "p99 µs", "plain /s", "p99 µs", "ratio", "refresh ms (20 cells)"],
        [[fast["contextual_decisions_per_s"], fast["contextual_p99_us"],
          fast["plain_decisions_per_s"], fast["plain_p99_us"], fast["ratio_to_plain"],
          fast["refresh_ms_20_cells"]]],
    )
    table(
        f"same traffic, {horizon:,} impressions x {seeds} seeds, refresh every {batch}",
        ["segments", "contextual clicks", "plain clicks", "contextual regret", "plain regret",
         "click gain"],
        [[label, q["contextual_clicks"], q["plain_clicks"], q["contextual_regret"],
          q["plain_regret"], q["click_gain"]] for label, q in quality.items()],
    )
    emit({
        "bench": "contextual", "quick": args.quick, "seed": args.seed, "horizon": horizon,
        "seeds": seeds, "refresh_every": batch, "speed": fast, **quality,
        "cost_of_cells": -quality["identical"]["click_gain"],
    })


if __name__ == "__main__":
    main()
