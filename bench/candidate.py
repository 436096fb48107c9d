"""One training cycle in isolation: does the candidate write truly better copy than its base?

The closed-loop benchmark (``bench/closed_loop.py``) answers the business question, but a
seed takes tens of minutes and its realized CTR carries the bandit's and the traffic's
noise. This one measures only what a cycle's weight update does, a few minutes per seed,
so that trainer settings can be compared over several seeds:

1. The evidence a first round gives: the base model writes ``--arms`` accepted variants per
   training brief, each is shown about ``--impressions`` times (uniform between half and
   one and a half of it), and its clicks are drawn from the audience's hidden true CTR.
2. The reward model fitted on those arms exactly as a cycle fits it (the settings' features,
   ridge and embeddings), the live pairs (``pair_threshold``) and the reward-model pairs
   among ``rm_samples`` fresh base samples per brief (``rm_pairs_k``), as ``run_cycle``
   builds them.
3. For each ``--steps`` value, a fresh LoRA adapter trained by the configured trainer's
   ``fit`` on those pairs; the base and each adapter then write ``--samples`` texts per brief
   with the same seeds.

Per seed and per steps value: acceptance, ``policy_lift`` (true CTR of the accepted plain
samples over the base's) and ``lift_over_rm_only`` (the best-scored share a rollout keeps,
``rollout_variants`` of ``rollout_best_of``, over the base's samples with the same
selection: what the update adds to selection alone). Means over seeds with 95% intervals.

    python bench/candidate.py [--audience FILE] [--seeds 0,1,2] [--steps 10,20]
                              [--torch-threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _measure import Samples, bench_parser, finite, mean_ci, over, sample_model, true_ctr
from _report import emit, table  # bench/_report.py, beside this script

from adgen.audience import Audience, load_audience
from adgen.brief import Brief
from adgen.generator import SamplingParams, sample_texts
from adgen.generator.prompts import build_prompt
from adgen.guardrails import check, config_from_settings
from adgen.loop import BRIEFS_EN, load_briefs
from adgen.model.bases import BaseModels
from adgen.model.versions import lineage_of
from adgen.reward.model import RewardModel
from adgen.reward.training import config_from_settings as reward_config
from adgen.settings import Settings
from adgen.training.config import TrainConfig
from adgen.training.pairs import ArmOutcome, CampaignEvidence, PreferencePair, live_pairs
from adgen.training.policy import trainable_policy
from adgen.training.ranked import sampled_pairs
from adgen.training.runner import TrainingData, fit

#: Seed offsets of the three draws of a seed: the arms' texts, the reward-model pairs'
#: samples and the evaluation samples (the base and every adapter share the last).
ARMS_SEED, PAIRS_SEED, EVAL_SEED = 0, 10_000, 20_000
#: The settings that shape a cycle's pairs, reported with the trainer's (``ADGEN_*`` vary them).
PAIR_SETTINGS = ("pair_threshold", "rm_samples", "rm_pairs_k", "reward_embeddings")


@dataclass(frozen=True)
class Bench:
    """What every seed runs with: the base model, the briefs, the audience and the settings."""

    model: Any
    tokenizer: Any
    briefs: Sequence[Brief]
    audience: Audience
    settings: Settings
    args: argparse.Namespace


@dataclass
class Measured:
    """One model's evaluation samples, measured: acceptance, true CTR plain and as served."""

    acceptance: float
    true_ctr: float
    served_true_ctr: float

    @classmethod
    def of(
        cls,
        samples: Samples,
        audience: Audience,
        briefs: Sequence[Brief],
        settings: Settings,
        reward_model: RewardModel,
    ) -> Measured:
        """The figures of ``samples``; as served = the reward model's best share."""
        return cls(
            samples.acceptance,
            true_ctr(audience, samples, briefs, settings),
            true_ctr(audience, samples, briefs, settings, reward_model),
        )


def first_round(bench: Bench, seed: int) -> list[CampaignEvidence]:
    """Per brief, up to ``--arms`` distinct accepted base texts with simulated impressions
    and clicks drawn from the audience's true CTR."""
    rng = np.random.default_rng(seed)
    guard = config_from_settings(bench.settings)
    params = SamplingParams.from_settings(bench.settings)
    args, audience = bench.args, bench.audience
    evidence, next_id = [], 1
    for i, brief in enumerate(bench.briefs):
        texts = sample_texts(
            bench.model, bench.tokenizer, brief, 3 * args.arms, seed + ARMS_SEED + i, params
        )
        kept = [t for t in dict.fromkeys(texts) if t and check(t, brief, [], guard).passed]
        arms = []
        for text in kept[: args.arms]:
            n = int(rng.integers(args.impressions // 2, 3 * args.impressions // 2 + 1))
            clicks = int(rng.binomial(n, audience.true_ctr(text, brief.brand, brief.locale)))
            arms.append(ArmOutcome(next_id, text, clicks, n))
            next_id += 1
        evidence.append(CampaignEvidence(i + 1, build_prompt(brief).messages(), tuple(arms)))
    return evidence


def fit_reward_model(
    evidence: Sequence[CampaignEvidence], briefs: Sequence[Brief], settings: Settings
) -> RewardModel:
    """The reward model on the arms, fitted as a cycle fits it."""
    arms = [(a, briefs[c.campaign_id - 1]) for c in evidence for a in c.arms]
    if len(arms) < 2:
        raise SystemExit(
            f"the base model wrote {len(arms)} accepted texts: too few arms for a reward model"
        )
    return RewardModel(reward_config(settings)).fit(
        [a.text for a, _ in arms],
        [b for _, b in arms],
        [a.successes for a, _ in arms],
        [a.trials for a, _ in arms],
    )


def run_seed(bench: Bench, seed: int) -> dict[str, Any]:
    """One seed: the base and one adapter per steps value, measured."""
    model, tokenizer, briefs, audience, args = (
        bench.model,
        bench.tokenizer,
        bench.briefs,
        bench.audience,
        bench.args,
    )
    settings = bench.settings.model_copy(update={"train_seed": seed})
    guard = config_from_settings(settings)
    evidence = first_round(bench, seed)
    reward_model = fit_reward_model(evidence, briefs, settings)
    campaigns = [(i + 1, b) for i, b in enumerate(briefs)]
    pairs: list[PreferencePair] = live_pairs(evidence, settings.pair_threshold)
    n_live = len(pairs)
    pairs += sampled_pairs(
        model,
        tokenizer,
        campaigns,
        reward_model,
        guard,
        settings.rm_samples,
        settings.rm_pairs_k,
        seed + PAIRS_SEED,
        SamplingParams.from_settings(settings),
    )

    def measured(m: Any) -> Measured:
        got = sample_model(m, tokenizer, briefs, args.samples, seed + EVAL_SEED, settings, guard)
        return Measured.of(got, audience, briefs, settings, reward_model)

    base = measured(model)
    out: dict[str, Any] = {
        "seed": seed,
        "arms": sum(len(c.arms) for c in evidence),
        "pairs_live": n_live,
        "pairs_reward_model": len(pairs) - n_live,
        "base": vars(base),
        "by_steps": {},
    }
    for steps in args.steps:
        config = TrainConfig.from_settings(settings, steps=steps)
        began = time.perf_counter()
        with (
            tempfile.TemporaryDirectory(prefix="adgen-candidate-") as tmp,
            trainable_policy(model, None, config) as policy,
        ):
            metrics = fit(policy, tokenizer, TrainingData(pairs=pairs), config, Path(tmp))
            trained_s = time.perf_counter() - began
            got = measured(policy)
        print(
            f"seed {seed}, {steps} steps: trained in {trained_s:.0f} s, acceptance "
            f"{got.acceptance:.2f} (base {base.acceptance:.2f}), true CTR {got.true_ctr:.4f} "
            f"(base {base.true_ctr:.4f})",
            flush=True,
        )
        out["by_steps"][str(steps)] = {
            **vars(got),
            "policy_lift": over(got.true_ctr, base.true_ctr),
            "lift_over_rm_only": over(got.served_true_ctr, base.served_true_ctr),
            "train_loss": metrics.get("train_loss"),
            "train_s": round(trained_s, 1),
        }
    return out


def summary(args: argparse.Namespace, per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Means and 95% intervals over seeds, per steps value."""
    out: dict[str, Any] = {"seeds": args.seeds, "steps": args.steps}
    out["base_acceptance"] = float(np.mean([s["base"]["acceptance"] for s in per_seed]))
    for key in ("policy_lift", "lift_over_rm_only", "acceptance", "train_s"):
        means, cis = {}, {}
        for steps in map(str, args.steps):
            means[steps], cis[steps] = mean_ci([s["by_steps"][steps][key] for s in per_seed])
        out[key], out[f"{key}_ci"] = means, cis
    out["per_seed"] = per_seed
    return out


def parse_args() -> argparse.Namespace:
    """The command line (``--quick``: 1 seed, 2 briefs, 6 arms, 8 samples, 2 steps)."""
    parser = bench_parser(__doc__)
    parser.add_argument("--steps", default="10,20", help="comma-separated optimizer steps")
    parser.add_argument("--briefs", type=int, default=3, help="first English briefs trained on")
    parser.add_argument("--arms", type=int, default=12, help="first-round variants per brief")
    parser.add_argument("--impressions", type=int, default=600, help="mean per first-round arm")
    parser.add_argument("--samples", type=int, default=24, help="evaluation samples per brief")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.briefs, args.arms, args.samples = "0", "2", 2, 6, 8
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.steps = [int(s) for s in args.steps.split(",")]
    if min(args.steps) < 1 or args.briefs < 1 or args.arms < 2 or args.samples < 1:
        parser.error("--steps, --briefs, --samples must be >= 1 and --arms >= 2")
    return args


def report(args: argparse.Namespace, audience: Audience, out: dict[str, Any], s: float) -> None:
    """The readable tables, then the JSON line."""
    print(
        f"audience {audience.name}; seeds {args.seeds}; {args.briefs} briefs of {args.arms} "
        f"arms at about {args.impressions} impressions; {args.samples} samples per brief; "
        f"{s:.0f} s"
    )
    rows = []
    for steps in map(str, args.steps):
        for key in ("policy_lift", "lift_over_rm_only", "acceptance"):
            rows.append((steps, key, out[key][steps], *(out[f"{key}_ci"][steps] or [None, None])))
    table(
        f"the candidate against its base (mean over seeds, 95% interval; base acceptance "
        f"{out['base_acceptance']:.2f})",
        ["steps", "figure", "mean", "low", "high"],
        rows,
    )
    emit(finite({"bench": "candidate", "audience": audience.name, "seconds": round(s, 1), **out}))


def main() -> None:
    args = parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    audience = load_audience(args.audience)
    briefs = load_briefs(BRIEFS_EN)[: args.briefs]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="adgen-candidate-") as tmp:
        settings = Settings().model_copy(update={"var_dir": Path(tmp)})
        if args.quick:
            settings = settings.model_copy(update={"rm_samples": 8, "reward_embeddings": "none"})
        model, tokenizer = BaseModels(settings).training(lineage_of(settings, "en"))
        bench = Bench(model, tokenizer, briefs, audience, settings, args)
        per_seed = [run_seed(bench, seed) for seed in args.seeds]
        trainer = TrainConfig.from_settings(settings).as_dict()
        trainer |= {k: getattr(settings, k) for k in PAIR_SETTINGS}
    out = {"trainer": {k: v for k, v in trainer.items() if k not in ("steps", "seed")}}
    out |= summary(args, per_seed)
    report(args, audience, out, time.perf_counter() - began)


if __name__ == "__main__":
    main()
