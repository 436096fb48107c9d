"""Training speed on this machine: seconds per DPO, KTO and GRPO (or RLOO) optimizer step, one full
training cycle, peak memory and the adapter's size on disk.

All runs use the same LoRA set-up (settings: r, alpha, targets), batch size and
``max_length``, on preference data from a synthetic campaign where texts with a number or
a call to action win. The reference, measured in the same run: one plain supervised LoRA
step (causal-LM loss on the chosen texts, same batch and length, a bare torch loop), so
``dpo_vs_sft`` says what DPO's second sequence and reference pass cost on top. A second
reference, ``dpo_all_positions_step_s``: the same DPO run with TRL's fused LM head scoring
every position, prompt included, as TRL does off Triton devices (adgen scores only the
completion tokens: ``adgen.training.trl_run.compact_fused_lm_head``); ``compact_head_speedup``
is the ratio, and ``compact_head_same_loss`` says whether both runs had the same loss. A
third, ``dpo_prompt_twice_step_s``: the same DPO run with each pair's prompt run for both
rows, as TRL does (adgen runs it once: ``adgen.training.shared_prompt``);
``shared_prompt_speedup`` and ``shared_prompt_same_loss`` likewise.
``cycle_s`` is one whole ``run_cycle`` on a throwaway SQLite database (reward model,
data, DPO, the candidate's rollout of variants). Step times are medians, the first
(set-up) step left out. The DPO step is also timed for the base model of each other
locale (``--locales``; Chinese: Qwen2.5-Coder-0.5B once installed) on that locale's
preference data, with the same configuration.

    python bench/train.py [--quick] [--seed N] [--steps S] [--batch B] [--base-model NAME]
                          [--rl grpo|rloo] [--locales en,zh]
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from _fixtures import ACME, ACME_LOSERS, ACME_WINNERS, HUAWEI, HUAWEI_LOSERS, HUAWEI_WINNERS
from _report import emit, table  # bench/_report.py, beside this script

from adgen.db import migrate
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.events import Event
from adgen.generator.prompts import build_prompt
from adgen.guardrails import config_from_settings
from adgen.ingest.batch import DecodedBatch, RawMessage
from adgen.ingest.store import VariantDirectory, store_batch
from adgen.model.bases import BaseModels
from adgen.model.versions import ModelRegistry, lineage_of
from adgen.reward import RewardConfig, RewardModel
from adgen.settings import Settings
from adgen.training import preference, trl_run
from adgen.training.config import TrainConfig
from adgen.training.cycle import run_cycle
from adgen.training.online import guarded_reward, train_online
from adgen.training.pairs import (
    ArmOutcome,
    CampaignEvidence,
    PreferencePair,
    binary_examples,
    live_pairs,
)
from adgen.training.policy import save_adapter, trainable_policy
from adgen.training.preference import train_dpo, train_kto
from adgen.vocabulary import RunStatus, Trainer

#: Each locale's synthetic campaign: brief, winning texts, losing texts.
CAMPAIGNS = {"en": (ACME, ACME_WINNERS, ACME_LOSERS), "zh": (HUAWEI, HUAWEI_WINNERS, HUAWEI_LOSERS)}
#: (impressions, clicks) of each winner and each loser: 10% against 2%.
WIN, LOSE = (400, 40), (400, 8)


def outcomes(locale: str = "en") -> list[ArmOutcome]:
    """The synthetic campaign's variants and their evidence."""
    _, winners, losers = CAMPAIGNS[locale]
    return [ArmOutcome(i, t, WIN[1], WIN[0]) for i, t in enumerate(winners)] + [
        ArmOutcome(100 + i, t, LOSE[1], LOSE[0]) for i, t in enumerate(losers)
    ]


def shuffled_pairs(locale: str, threshold: float, seed: int) -> list[PreferencePair]:
    """The live preference pairs of ``locale``'s synthetic campaign, shuffled."""
    brief = CAMPAIGNS[locale][0]
    evidence = [CampaignEvidence(1, build_prompt(brief).messages(), tuple(outcomes(locale)))]
    pairs = live_pairs(evidence, threshold)
    rng = np.random.default_rng(seed)
    return [pairs[i] for i in rng.permutation(len(pairs))]


def dpo_other_bases(
    settings: Settings,
    models: BaseModels,
    config: TrainConfig,
    locales: list[str],
    english: dict[str, Any],
    seed: int,
) -> list[dict[str, Any]]:
    """DPO seconds per step for the base model of each locale (``english``: the figures
    already measured for the English base, reused when a locale shares it)."""
    rows = [english]
    for locale in locales:
        if locale == "en":
            continue
        name = lineage_of(settings, locale)
        if name == english["base_model"]:
            rows.append({**english, "locale": locale})
            continue
        start = time.perf_counter()
        base, tokenizer = models.training(name)
        load_s = time.perf_counter() - start
        pairs = shuffled_pairs(locale, settings.pair_threshold, seed)
        with trainable_policy(base, None, config) as policy:
            step_s = train_dpo(policy, tokenizer, pairs, config).step_s
        rows.append(_base_row(locale, name, base, load_s, step_s, len(pairs)))
    return rows


def _base_row(
    locale: str, name: str, base: Any, load_s: float, step_s: float, pairs: int
) -> dict[str, Any]:
    return {
        "locale": locale,
        "base_model": name,
        "train_dtype": str(next(base.parameters()).dtype).removeprefix("torch."),
        "params_m": round(sum(p.numel() for p in base.parameters()) / 1e6, 1),
        "load_s": round(load_s, 2),
        "dpo_step_s": round(step_s, 3),
        "pairs": pairs,
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sft_step_s(
    base: Any, tokenizer: Any, config: TrainConfig, texts: list[str], steps: int
) -> float:
    """Median seconds of one plain LoRA causal-LM step on ``texts`` (the reference)."""
    prompt = build_prompt(ACME).messages()
    batches = [texts[i : i + config.batch_size] for i in range(0, len(texts), config.batch_size)]
    durations = []
    with trainable_policy(base, None, config) as policy:
        policy.train()
        params = [p for p in policy.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
        for step in range(steps):
            chunk = batches[step % len(batches)]
            rendered = [
                tokenizer.apply_chat_template(
                    [*prompt, {"role": "assistant", "content": t}], tokenize=False
                )
                for t in chunk
            ]
            enc = tokenizer(
                rendered,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=config.max_length,
            )
            labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
            start = time.perf_counter()
            loss = policy(**enc, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            durations.append(time.perf_counter() - start)
    return statistics.median(durations[1:] or durations)


@contextmanager
def switched_off(module: ModuleType, flag: str) -> Iterator[None]:
    """``module.flag`` False within the block (a reference run), True again after it."""
    setattr(module, flag, False)
    try:
        yield
    finally:
        setattr(module, flag, True)


def timed_trainer(base: Any, tokenizer: Any, config: TrainConfig, run: Any) -> tuple[float, float]:
    """(median step seconds, adapter MB) of one trainer run on a fresh LoRA."""
    with trainable_policy(base, None, config) as policy, tempfile.TemporaryDirectory() as tmp:
        stats = run(policy)
        adapter_mb = save_adapter(policy, Path(tmp) / "adapter")
    return stats.step_s, adapter_mb


def seed_database(url: str) -> None:
    """The synthetic campaign in a new database, its evidence stored by the ingest path."""
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with transaction(session_factory(engine)) as session:
            campaign = create_campaign(session, ACME)
            texts = ACME_WINNERS + ACME_LOSERS
            variants = add_variants(session, campaign.id, texts)
            counts = [WIN] * len(ACME_WINNERS) + [LOSE] * len(ACME_LOSERS)
            now = datetime.now(UTC)
            events: list[tuple[RawMessage, Event]] = []
            for variant, (impressions, clicks) in zip(variants, counts, strict=True):
                for i in range(impressions):
                    imp = uuid.uuid4().hex
                    kinds = ["impression", "click"] if i < clicks else ["impression"]
                    for kind in kinds:
                        event = Event(
                            type=kind,
                            event_id=uuid.uuid4().hex,
                            impression_id=imp,
                            campaign_id=campaign.id,
                            variant_id=variant.id,
                            propensity=0.5 if kind == "impression" else None,
                            event_time=now,
                        )
                        message = RawMessage("bench", 0, len(events), None, None)
                        events.append((message, event))
            store_batch(session, DecodedBatch(events=events), VariantDirectory())
    finally:
        engine.dispose()


def cycle_seconds(settings: Settings, models: BaseModels) -> dict[str, Any]:
    """One whole training cycle on a fresh SQLite database; its result's figures."""
    seed_database(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        start = time.perf_counter()
        result = run_cycle(
            settings,
            session_factory(engine),
            ModelRegistry(settings, bases=models),
            progress=False,
        )
        seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    if result.status != RunStatus.SUCCEEDED:
        raise SystemExit(f"the benchmark cycle did not train: {result.status}: {result.reason}")
    return {"cycle_s": seconds, **result.metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (under a minute)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps", type=int, help="optimizer steps per trainer (default 10; 2 quick)"
    )
    parser.add_argument(
        "--batch", type=int, default=4, help="pairs / examples / completions per step"
    )
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--base-model", help="base model (default: the bundled SmolLM2)")
    parser.add_argument(
        "--rl",
        choices=(Trainer.GRPO, Trainer.RLOO),
        default=Trainer.GRPO,
        help="on-policy trainer",
    )
    parser.add_argument(
        "--locales", default="en,zh", help="time DPO for the base model of each of these locales"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    locales = [loc.strip() for loc in args.locales.split(",") if loc.strip()]
    if unknown := sorted(set(locales) - set(CAMPAIGNS)):
        parser.error(f"--locales: unknown {unknown}; choose from {sorted(CAMPAIGNS)}")
    steps = args.steps or (2 if args.quick else 10)

    with tempfile.TemporaryDirectory(prefix="adgen-bench-train-") as tmp:
        settings = Settings(
            var_dir=Path(tmp),
            base_model=args.base_model,
            train_steps=steps,
            train_batch_size=args.batch,
            max_length=args.max_length,
            train_seed=args.seed,
            rm_samples=0 if args.quick else 8,
            reward_min_arms=10,
            reward_embeddings="none" if args.quick else "auto",
            rollout_variants=1 if args.quick else 4,
            rollout_best_of=1 if args.quick else 8,
        )
        config = TrainConfig.from_settings(settings)
        models = BaseModels(settings)
        base_name = lineage_of(settings, "en")
        start = time.perf_counter()
        base, tokenizer = models.training(base_name)
        load_s = time.perf_counter() - start

        evidence = [CampaignEvidence(1, build_prompt(ACME).messages(), tuple(outcomes()))]
        pairs = shuffled_pairs("en", settings.pair_threshold, args.seed)
        examples = binary_examples(evidence, settings.pair_threshold)

        sft = sft_step_s(base, tokenizer, config, [p.chosen for p in pairs], steps)
        dpo_stats: list[Any] = []

        def dpo_run(m: Any) -> Any:
            dpo_stats.append(train_dpo(m, tokenizer, pairs, config))
            return dpo_stats[-1]

        torch.manual_seed(args.seed)  # the same LoRA initialisation for every DPO run
        dpo, adapter_mb = timed_trainer(base, tokenizer, config, dpo_run)
        with switched_off(trl_run, "SCORE_COMPLETIONS_ONLY"):
            torch.manual_seed(args.seed)
            dpo_all, _ = timed_trainer(base, tokenizer, config, dpo_run)
        with switched_off(preference, "SHARE_PROMPTS"):
            torch.manual_seed(args.seed)
            dpo_twice, _ = timed_trainer(base, tokenizer, config, dpo_run)
        losses = [s.train_loss for s in dpo_stats]
        kto_config = TrainConfig.from_settings(settings, trainer=Trainer.KTO)
        kto, _ = timed_trainer(
            base, tokenizer, kto_config, lambda m: train_kto(m, tokenizer, examples, kto_config)
        )
        rl_config = TrainConfig.from_settings(settings, trainer=args.rl)
        reward_model = RewardModel(RewardConfig(embeddings="none")).fit(
            [a.text for a in outcomes()],
            [ACME] * len(outcomes()),
            [a.successes for a in outcomes()],
            [a.trials for a in outcomes()],
        )
        reward = guarded_reward(reward_model, [ACME], config_from_settings(settings))
        prompts = [build_prompt(ACME).messages()]
        rl, _ = timed_trainer(
            base,
            tokenizer,
            rl_config,
            lambda m: train_online(m, tokenizer, prompts, reward, rl_config),
        )
        settings = settings.model_copy(
            update={"database_url": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        )
        cycle = cycle_seconds(settings, models)
        by_base = dpo_other_bases(
            settings,
            models,
            config,
            locales,
            _base_row("en", base_name, base, load_s, dpo, len(pairs)),
            args.seed,
        )

    result = {
        "bench": "train",
        "base_model": base_name,
        "dpo_step_s": round(dpo, 3),
        "kto_step_s": round(kto, 3),
        "rl_step_s": round(rl, 3),
        "rl_trainer": args.rl,
        "sft_step_s": round(sft, 3),
        "dpo_vs_sft": round(dpo / sft, 2),
        "dpo_all_positions_step_s": round(dpo_all, 3),
        "compact_head_speedup": round(dpo_all / dpo, 3),
        "compact_head_same_loss": abs(losses[0] - losses[1]) < 1e-4,
        "dpo_prompt_twice_step_s": round(dpo_twice, 3),
        "shared_prompt_speedup": round(dpo_twice / dpo, 3),
        "shared_prompt_same_loss": abs(losses[0] - losses[2]) < 1e-4,
        "dpo_by_base": by_base,
        "cycle_s": round(cycle["cycle_s"], 2),
        "cycle_train_s": cycle.get("train_seconds"),
        "cycle_rollout_s": cycle.get("rollout_s"),
        "cycle_heldout_margin_before": cycle.get("heldout_margin_before"),
        "cycle_heldout_margin_after": cycle.get("heldout_margin_after"),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "adapter_mb": round(adapter_mb, 3),
        "load_s": round(load_s, 2),
        "pairs": len(pairs),
        "kto_examples": len(examples),
        "steps": steps,
        "batch": args.batch,
        "max_length": args.max_length,
        "rl_generations": rl_config.num_generations,
        "rl_completion_tokens": rl_config.max_completion_length,
        "lora": f"r={config.lora_r} alpha={config.lora_alpha} {','.join(config.lora_targets)}",
        "device": models.device,
        "torch_threads": torch.get_num_threads(),
        "seed": args.seed,
        "quick": args.quick,
    }
    table(
        f"training speed: {base_name}, {steps} steps of batch {args.batch}, "
        f"max_length {args.max_length}, {len(pairs)} pairs",
        ["trainer", "s/step", "× plain LoRA step"],
        [
            ("plain LoRA causal-LM step (reference)", sft, 1.0),
            ("DPO", dpo, dpo / sft),
            ("DPO, LM head on every position (TRL off Triton)", dpo_all, dpo_all / sft),
            ("DPO, each pair's prompt run twice (TRL)", dpo_twice, dpo_twice / sft),
            ("KTO", kto, kto / sft),
            (
                f"{args.rl.upper()} ({rl_config.num_generations} × "
                f"{rl_config.max_completion_length} tokens)",
                rl,
                rl / sft,
            ),
        ],
    )
    table(
        f"DPO per base model ({steps} steps of batch {args.batch}, each on its locale's pairs)",
        ["locale", "base model", "params (M)", "train dtype", "load s", "DPO s/step", "× en base"],
        [
            (
                r["locale"],
                r["base_model"],
                r["params_m"],
                r["train_dtype"],
                r["load_s"],
                r["dpo_step_s"],
                r["dpo_step_s"] / dpo,
            )
            for r in by_base
        ],
    )
    table(
        "one full training cycle (SQLite)",
        [
            "cycle s",
            "train s",
            "rollout s",
            "margin before",
            "margin after",
            "peak RSS MB",
            "adapter MB",
        ],
        [
            (
                cycle["cycle_s"],
                cycle.get("train_seconds"),
                cycle.get("rollout_s"),
                cycle.get("heldout_margin_before"),
                cycle.get("heldout_margin_after"),
                peak_rss_mb(),
                adapter_mb,
            )
        ],
    )
    emit(result)


if __name__ == "__main__":
    main()
