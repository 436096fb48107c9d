"""Generation speed and acceptance: accepted variants per second, latency of a batch of 8,
and the acceptance rate per guardrail, for ``en`` and ``zh``, on this machine.

For each locale the base model that writes it (``ADGEN_BASE_MODEL`` / ``_ZH``; the bundled
SmolLM2-135M when nothing else is installed) is loaded once. The reference, measured in the
same run, is bare sampling: one batch of 8 candidates from the brief's prompt, with no
cleaning or guardrails (``raw_candidates_per_s``); ``ratio_to_raw`` is accepted variants per
second over raw candidates per second, i.e. what the guardrails and resampling cost.
Then ``generate_variants`` asks for 8 variants per run (4 with ``--quick``), seeded.

``--compare-en``, instead of the figures above, has each candidate English base model, the
bundled SmolLM2-135M and Qwen2.5-Coder-0.5B (when installed), write English for the same
English briefs (the bench's STRIDE and ACME and the demo's; half as many variants per
brief, 2 with ``--quick``): per model the acceptance rate, the share of candidates refused
as ``invented_name`` and as ``instruction_leak``, the mean predicted click rate of the
accepted texts by a reward model fitted on the Upworthy archive (TF-IDF and hand-made
features, no embeddings), the generation seconds per accepted variant and the seconds of
one DPO step at batch 4 (the second of two, on ``bench/train.py``'s synthetic pairs).
``chosen_en_default`` picks the model by those figures.

    python bench/generate.py [--quick] [--seed N] [--locale en|zh|both] [--compare-en]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from _fixtures import ACME, STRIDE, WATCH  # bench/_fixtures.py, beside this script
from _report import emit, table  # bench/_report.py, beside this script
from reward_upworthy import DEFAULT_DATA  # bench/reward_upworthy.py, beside this script
from train import shuffled_pairs  # bench/train.py, beside this script

from adgen.brief import Brief
from adgen.generator import LoopConfig, SamplingParams, generate_variants
from adgen.generator.filters import OFF_BRIEF, PROMPT_ECHO
from adgen.generator.prompts import build_prompt
from adgen.generator.sampling import sample_raw
from adgen.guardrails import REASONS
from adgen.guardrails.rules import INSTRUCTION_LEAK, INVENTED_NAME
from adgen.guardrails.text import cjk_share
from adgen.history.reader import ColumnMap, read_experiments
from adgen.loop import load_briefs
from adgen.model.loading import BUNDLED_NAME, ZH_MODEL_NAME, cached_model_dir
from adgen.model.versions import ModelRegistry
from adgen.reward import RewardConfig, RewardModel
from adgen.settings import Settings
from adgen.training.config import TrainConfig
from adgen.training.policy import trainable_policy
from adgen.training.preference import train_dpo

BRIEFS = {"en": STRIDE, "zh": WATCH}
BATCH = 8
ALL_REASONS = (*REASONS, PROMPT_ECHO, OFF_BRIEF)
#: The English base models compared by ``--compare-en``.
EN_CANDIDATES = (BUNDLED_NAME, ZH_MODEL_NAME)
DPO_BATCH, DPO_STEPS = 4, 2


def bench_locale(
    registry: ModelRegistry, locale: str, seed: int, runs: int, n: int, reps: int
) -> dict[str, Any]:
    """Figures for one locale."""
    brief = BRIEFS[locale]
    name = registry.base_name_for_locale(locale)
    base = registry.bases.serving(name)
    params = SamplingParams.from_settings(registry.settings)
    prompt = build_prompt(brief)
    sample_raw(base.model, base.tokenizer, prompt, 2, seed, SamplingParams(max_new_tokens=4))
    start = time.perf_counter()
    for rep in range(reps):
        sample_raw(base.model, base.tokenizer, prompt, BATCH, seed + rep, params)
    batch_latency = (time.perf_counter() - start) / reps

    accepted: list[str] = []
    rejections: Counter[str] = Counter()
    candidates = 0
    start = time.perf_counter()
    for run in range(runs):
        result = generate_variants(
            base.model,
            base.tokenizer,
            brief,
            n,
            seed=seed + 1000 + run,
            guardrails=registry.guardrails,
            params=params,
            loop=LoopConfig.from_settings(registry.settings),
        )
        accepted += [c.text for c in result.accepted]
        rejections.update(result.rejections)
        candidates += result.candidates
    elapsed = time.perf_counter() - start
    raw_rate = BATCH / batch_latency
    rate = len(accepted) / elapsed
    letters = "".join(ch for t in accepted for ch in t if ch.isalpha())
    return {
        "locale": locale,
        "base_model": name,
        "variants_per_s": round(rate, 4),
        "batch_latency_s": round(batch_latency, 3),
        "raw_candidates_per_s": round(raw_rate, 3),
        "ratio_to_raw": round(rate / raw_rate, 4),
        "acceptance_rate": round(len(accepted) / candidates, 4) if candidates else 0.0,
        "rejections": dict(rejections.most_common()),
        "guardrail_acceptance": {
            r: round(1 - rejections[r] / candidates, 4) if candidates else None
            for r in ALL_REASONS
        },
        "cjk_share": round(cjk_share(letters), 4) if letters else None,
        "candidates": candidates,
        "accepted": len(accepted),
        "runs": runs,
        "examples": accepted[:5],
    }


def english_briefs() -> list[Brief]:
    """The English briefs of the comparison: the bench's own and the demo's."""
    return [STRIDE, ACME, *(b for b in load_briefs() if b.locale == "en")]


def upworthy_reward_model() -> RewardModel:
    """A reward model fitted on every arm of the vendored Upworthy archive (no embeddings)."""
    rows = [r for r in read_experiments(DEFAULT_DATA, ColumnMap()).rows if r.impressions > 0]
    return RewardModel(RewardConfig(embeddings="none")).fit(
        [r.text for r in rows], None, [r.clicks for r in rows], [r.impressions for r in rows]
    )


def dpo_step_s(registry: ModelRegistry, name: str, seed: int) -> float:
    """Seconds of one DPO step at batch ``DPO_BATCH`` on base ``name`` (the last of
    ``DPO_STEPS``, the first being set-up), on the English synthetic preference pairs."""
    settings = registry.settings
    config = TrainConfig.from_settings(settings, steps=DPO_STEPS, batch_size=DPO_BATCH)
    base, tokenizer = registry.bases.training(name)
    pairs = shuffled_pairs("en", settings.pair_threshold, seed)
    with trainable_policy(base, None, config) as policy:
        return train_dpo(policy, tokenizer, pairs, config).step_s


def compare_model(
    registry: ModelRegistry, name: str, reward: RewardModel, seed: int, n: int
) -> dict[str, Any]:
    """One English base model on every English brief: acceptance, the two copy guardrails,
    the reward of what it accepts, seconds per accepted variant and per DPO step."""
    base = registry.bases.serving(name)
    params = SamplingParams.from_settings(registry.settings)
    start = time.perf_counter()
    results = [
        generate_variants(
            base.model, base.tokenizer, brief, n, seed=seed + 1000 + i,
            guardrails=registry.guardrails, params=params,
            loop=LoopConfig.from_settings(registry.settings),
        )
        for i, brief in enumerate(english_briefs())
    ]
    elapsed = time.perf_counter() - start
    texts = [c.text for r in results for c in r.accepted]
    scores = reward.score(texts)
    rejections: Counter[str] = Counter()
    for r in results:
        rejections.update(r.rejections)
    candidates = sum(r.candidates for r in results)
    return {
        "base_model": name,
        "briefs": len(results),
        "candidates": candidates,
        "accepted": len(texts),
        "acceptance_rate": round(len(texts) / candidates, 4),
        "invented_name_rate": round(rejections[INVENTED_NAME] / candidates, 4),
        "instruction_leak_rate": round(rejections[INSTRUCTION_LEAK] / candidates, 4),
        "rejections": dict(rejections.most_common()),
        "mean_reward": round(float(scores.mean()), 5) if texts else None,
        "s_per_accepted": round(elapsed / len(texts), 3) if texts else None,
        "dpo_step_s": round(dpo_step_s(registry, name, seed), 3),
        "examples": texts[:4],
    }


def choose_en_default(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The English default by the figures: the model with the most accepted copy per second
    of generation, unless another one's accepted copy scores higher by at least 2% (relative)
    and it accepts at least as much; with the training cost it would bring."""
    fastest = min(rows, key=lambda r: r["s_per_accepted"] or float("inf"))
    best = max(rows, key=lambda r: r["mean_reward"] or 0.0)
    better = (
        best is not fastest
        and (best["mean_reward"] or 0) >= 1.02 * (fastest["mean_reward"] or 0)
        and best["acceptance_rate"] >= fastest["acceptance_rate"]
    )
    pick = best if better else fastest
    other = next((r for r in rows if r is not pick), None)
    if other is None:
        return {"model": pick["base_model"], "reason": "the only English candidate installed"}
    reason = (
        f"{pick['base_model']}: acceptance {pick['acceptance_rate']:.0%} vs "
        f"{other['acceptance_rate']:.0%}, {pick['s_per_accepted']} vs {other['s_per_accepted']} "
        f"s per accepted variant, mean reward {pick['mean_reward']} vs {other['mean_reward']}, "
        f"DPO step {pick['dpo_step_s']} vs {other['dpo_step_s']} s"
    )
    return {"model": pick["base_model"], "reason": reason}


def compare_en(registry: ModelRegistry, seed: int, n: int) -> dict[str, Any]:
    """``compare_en`` (per installed candidate model) and ``chosen_en_default``."""
    settings = registry.settings
    reward = upworthy_reward_model()
    installed = [
        m for m in EN_CANDIDATES
        if m == BUNDLED_NAME or cached_model_dir(settings.cache_dir, m).is_dir()
    ]
    rows = [compare_model(registry, name, reward, seed, n) for name in installed]
    table(
        f"English copy by base model, {len(english_briefs())} briefs x {n} variants, seed {seed}",
        ["base model", "acceptance", "invented_name", "instruction_leak", "mean reward",
         "s / accepted", "DPO step (s)"],
        [(r["base_model"], r["acceptance_rate"], r["invented_name_rate"],
          r["instruction_leak_rate"], r["mean_reward"], r["s_per_accepted"], r["dpo_step_s"])
         for r in rows],
    )
    for r in rows:
        print(f"{r['base_model']} accepted, e.g.: " + " | ".join(r["examples"]))
    return {"compare_en": rows, "chosen_en_default": choose_en_default(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (under a minute)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--locale", choices=["en", "zh", "both"], default="both")
    parser.add_argument(
        "--compare-en", action="store_true",
        help="instead, compare the English base-model candidates (SmolLM2, Qwen) on English "
        "briefs (half as many variants per brief)",
    )
    args = parser.parse_args()
    locales = ["en", "zh"] if args.locale == "both" else [args.locale]
    runs, n, reps = (1, 4, 1) if args.quick else (3, 8, 3)
    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, Any] = {"gen_max_attempts": 2} if args.quick else {}
        registry = ModelRegistry(Settings(var_dir=Path(tmp), **overrides))
        if args.compare_en:
            compared = compare_en(registry, args.seed, n // 2)
            emit({"bench": "generate", "seed": args.seed, "quick": args.quick, **compared})
            return
        results = [bench_locale(registry, loc, args.seed, runs, n, reps) for loc in locales]
    table(
        f"generation on {registry.device} ({torch.get_num_threads()} threads), "
        f"{runs} run(s) of {n} variants, seed {args.seed}",
        ["locale", "base model", "batch of 8 (s)", "raw cand/s", "variants/s", "ratio to raw",
         "acceptance", "cjk share"],
        [
            (r["locale"], r["base_model"], r["batch_latency_s"], r["raw_candidates_per_s"],
             r["variants_per_s"], r["ratio_to_raw"], r["acceptance_rate"], r["cjk_share"])
            for r in results
        ],
    )
    table(
        "share of candidates passing each guardrail / filter",
        ["reason", *[r["locale"] for r in results]],
        [(reason, *[r["guardrail_acceptance"][reason] for r in results]) for reason in ALL_REASONS],
    )
    for r in results:
        print(f"{r['locale']} accepted, e.g.: " + " | ".join(r["examples"]))
    emit({"bench": "generate", "seed": args.seed, "quick": args.quick, "results": results})


if __name__ == "__main__":
    main()
