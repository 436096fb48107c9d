"""Generation speed and acceptance: accepted variants per second, latency of a batch of 8,
and the acceptance rate per guardrail, for ``en`` and ``zh``, on this machine.

For each locale the base model that writes it (``ADGEN_BASE_MODEL`` / ``_ZH``; the bundled
SmolLM2-135M when nothing else is installed) is loaded once. The reference, measured in the
same run, is bare sampling: one batch of 8 candidates from the brief's prompt, with no
cleaning or guardrails (``raw_candidates_per_s``); ``ratio_to_raw`` is accepted variants per
second over raw candidates per second, i.e. what the guardrails and resampling cost.
Then ``generate_variants`` asks for 8 variants per run (4 with ``--quick``), seeded.

    python bench/generate.py [--quick] [--seed N] [--locale en|zh|both]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from _fixtures import STRIDE, WATCH  # bench/_fixtures.py, beside this script
from _report import emit, table  # bench/_report.py, beside this script

from adgen.generator import LoopConfig, SamplingParams, generate_variants
from adgen.generator.filters import OFF_BRIEF, PROMPT_ECHO
from adgen.generator.prompts import build_prompt
from adgen.generator.sampling import sample_raw
from adgen.guardrails import REASONS
from adgen.guardrails.text import cjk_share
from adgen.model.versions import ModelRegistry
from adgen.settings import Settings

BRIEFS = {"en": STRIDE, "zh": WATCH}
BATCH = 8
ALL_REASONS = (*REASONS, PROMPT_ECHO, OFF_BRIEF)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (under a minute)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--locale", choices=["en", "zh", "both"], default="both")
    args = parser.parse_args()
    locales = ["en", "zh"] if args.locale == "both" else [args.locale]
    runs, n, reps = (1, 4, 1) if args.quick else (3, 8, 3)
    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, Any] = {"gen_max_attempts": 2} if args.quick else {}
        registry = ModelRegistry(Settings(var_dir=Path(tmp), **overrides))
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
