"""Lift of the closed loop: does retraining make the generator's texts truly better?

Runs the real loop (``adgen.loop.ClosedLoop``: SQLite, the embedded broker, the bundled
model, simulated traffic through Kafka, the trainer's scheduled job each round) on the
English demo briefs, then measures each round's model version on the same evaluation
briefs: ``--samples`` texts per brief (default 48), kept when they pass the guardrails,
scored by the audience's hidden true CTR. Beside it, in the same run and with the same
seeds:

- no retraining: the base model keeps generating (fresh samples, same seeds per round);
- reward model only: the base model's samples, the best share of them kept by the loop's
  final reward model (the share a rollout keeps: ``rollout_variants`` of
  ``rollout_best_of``), no weight updates.

The final version is the one the lineage serves after the last round (rolled-back
candidates are gone by then). It is measured both ways: its plain samples
(``policy_lift``: what the weight updates did) and the same samples with the reward-model
selection a rollout applies (``lift``: how a version writes the variants it serves). The
weight updates pay off when ``lift`` exceeds ``rm_only_lift``: same selection, better
generator.

    python bench/closed_loop.py --audience FILE --rounds N --seed S [--quick]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _report import emit, table  # bench/_report.py, beside this script
from sqlalchemy import select

from adgen.audience import Audience, load_audience
from adgen.brief import Brief
from adgen.db.models import ModelVersion
from adgen.generator import SamplingParams, sample_texts
from adgen.guardrails import check
from adgen.loop import ClosedLoop, DemoConfig, load_briefs
from adgen.model.versions import active_version
from adgen.reward.model import RewardModel
from adgen.reward.training import load_active
from adgen.settings import Settings


def sample(loop: ClosedLoop, version: ModelVersion, brief: Brief, n: int, seed: int) -> list[str]:
    """``n`` texts of ``version`` for ``brief`` that pass the guardrails."""
    loaded = loop.registry.load(version)
    params = SamplingParams.from_settings(loop.settings)
    with loaded.activated() as model:
        texts = sample_texts(model, loaded.tokenizer, brief, n, seed, params)
    return [t for t in texts if t and check(t, brief, [], loop.registry.guardrails).passed]


def true_ctr(audience: Audience, texts: list[str], brief: Brief) -> float:
    """Mean hidden CTR of ``texts`` (NaN when there are none)."""
    if not texts:
        return math.nan
    return float(np.mean([audience.true_ctr(t, brief.brand, brief.locale) for t in texts]))


def evaluate(
    loop: ClosedLoop,
    version: ModelVersion,
    briefs: list[Brief],
    n: int,
    seed: int,
    reward_model: RewardModel | None = None,
) -> float:
    """Mean true CTR of a version's texts over the evaluation briefs: its accepted samples
    among ``n``, or with ``reward_model`` the best-scored share of them that a rollout keeps
    (``rollout_variants`` of ``rollout_best_of``: how a version writes what it serves)."""
    settings = loop.settings
    values = []
    for i, brief in enumerate(briefs):
        texts = sample(loop, version, brief, n, seed + i)
        if reward_model is not None and texts:
            keep = max(1, len(texts) * settings.rollout_variants // settings.rollout_best_of)
            texts = [texts[j] for j in reward_model.rank(texts, brief)[:keep]]
        values.append(true_ctr(loop.audience, texts, brief))
    return float(np.nanmean(values))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--audience", type=Path, default=None, help="audience JSON (default: shipped)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--impressions", type=int, default=100_000, help="per round")
    parser.add_argument("--samples", type=int, default=48, help="evaluation samples per brief")
    parser.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="DPO steps per cycle (default 20, half the trainer's: five rounds in an hour on "
        "2 CPU cores)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round, little traffic, 8 samples (8 ranked per campaign)",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.impressions, args.samples = 1, 1_500, 8
    args.train_steps = args.train_steps or (2 if args.quick else 20)

    audience = load_audience(args.audience)
    briefs = [b for b in load_briefs() if b.locale == "en"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="adgen-closed-loop-") as tmp:
        update: dict[str, Any] = {
            "var_dir": Path(tmp),
            "database_url": None,
            "kafka_bootstrap": None,
            "train_locales": ["en"],
            "gen_seed": args.seed,
            "ingest_session_timeout_ms": 6000,
            "train_steps": args.train_steps,
        }
        if args.quick:
            update["rm_samples"] = 8
        settings = Settings().model_copy(update=update)
        config = DemoConfig(
            rounds=args.rounds, impressions_per_round=args.impressions, seed=args.seed
        )
        with ClosedLoop(settings, audience, config, briefs) as loop:
            loop.setup()
            for r in range(1, args.rounds + 1):
                loop.run_round(r)
                print(
                    f"round {r}: " + ("; ".join(loop.rounds[-1].training) or "no training"),
                    flush=True,
                )
            with loop.sessions() as s:
                versions = {
                    v.id: v for v in s.scalars(select(ModelVersion).order_by(ModelVersion.id))
                }
            base = next(v for v in versions.values() if v.parent_id is None)
            base_ctr = evaluate(loop, base, briefs, args.samples, args.seed)
            with loop.sessions() as s:  # the version the lineage serves after the last round
                final_id = active_version(s, base.base_model).id
            per_round, final_ctr = [], base_ctr
            for report in loop.rounds:
                vid = report.candidates[0] if report.candidates else report.serving["en"]
                ctr = (
                    base_ctr
                    if vid == base.id
                    else evaluate(loop, versions[vid], briefs, args.samples, args.seed)
                )
                if vid == final_id:
                    final_ctr = ctr
                per_round.append(
                    {
                        "round": report.round,
                        "version": vid,
                        "mean_true_ctr": ctr,
                        "served_ctr": report.served_ctr,
                        "promoted": report.promoted,
                        "rolled_back": report.rolled_back,
                    }
                )
            if final_id not in {p["version"] for p in per_round}:
                final_ctr = evaluate(loop, versions[final_id], briefs, args.samples, args.seed)
            no_retrain = evaluate(loop, base, briefs, args.samples, args.seed + 1000)
            with loop.sessions() as s:
                reward_model = load_active(s, loop.settings)
            if reward_model is None:
                final_served = rm_ctr = math.nan
            else:
                final_served = evaluate(
                    loop, versions[final_id], briefs, args.samples, args.seed, reward_model
                )
                rm_ctr = evaluate(loop, base, briefs, args.samples, args.seed, reward_model)
            keep = f"{settings.rollout_variants} of {settings.rollout_best_of}"

    def lift(x: float) -> float | None:
        return x / base_ctr - 1 if base_ctr > 0 and not math.isnan(x) else None

    print(
        f"audience {audience.name}; {args.rounds} rounds of {args.impressions:,} impressions; "
        f"{args.samples} samples per brief on {len(briefs)} briefs; "
        f"{time.perf_counter() - started:.0f} s"
    )
    table(
        "true CTR of each round's version (its generated texts)",
        [
            "round",
            "version",
            "mean true CTR",
            "lift vs base",
            "served CTR",
            "promoted",
            "rolled back",
        ],
        [
            (
                p["round"],
                f"v{p['version']}",
                p["mean_true_ctr"],
                lift(p["mean_true_ctr"]),
                p["served_ctr"],
                ",".join(map(str, p["promoted"])) or None,
                ",".join(map(str, p["rolled_back"])) or None,
            )
            for p in per_round
        ],
    )
    table(
        "final version against the references (mean true CTR of the texts each writes)",
        ["generator", "mean true CTR", "lift vs base"],
        [
            ("base model, its samples (round 0)", base_ctr, 0.0),
            ("no retraining: base model, fresh samples", no_retrain, lift(no_retrain)),
            (
                f"reward model only: base model, best {keep} by the reward model",
                rm_ctr,
                lift(rm_ctr),
            ),
            (f"final version v{final_id}, its samples", final_ctr, lift(final_ctr)),
            (
                f"final version v{final_id}, best {keep} (as it serves)",
                final_served,
                lift(final_served),
            ),
        ],
    )
    emit(
        {
            "bench": "closed_loop",
            "audience": audience.name,
            "rounds": args.rounds,
            "seed": args.seed,
            "base_true_ctr": base_ctr,
            "final_version": final_id,
            "final_true_ctr": final_ctr,
            "final_served_true_ctr": None if math.isnan(final_served) else final_served,
            "lift": lift(final_served),
            "policy_lift": lift(final_ctr),
            "no_retrain_lift": lift(no_retrain),
            "rm_only_lift": lift(rm_ctr),
            "rm_only_true_ctr": None if math.isnan(rm_ctr) else rm_ctr,
            "served_share": keep,
            "samples_per_brief": args.samples,
            "impressions_per_round": args.impressions,
            "train_steps": args.train_steps,
            "per_round": per_round,
        }
    )


if __name__ == "__main__":
    main()
