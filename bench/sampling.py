"""Sampling with the prompt computed once against once per sample, and rows stopped once
their candidate is settled against run to the token limit, side by side.

``adgen.generator.sampling.sample_raw`` runs a brief's prompt through the model once and
copies its key/value cache to the ``n`` rows of the batch (``prompt_cache``). The
reference, measured in the same run and interleaved with it, is ``generate`` with
``num_return_sequences=n``, which runs the prompt ``n`` times. Both use the same seeds, so
``same_texts`` counts the samples the two paths wrote identically (the cache changes the
order of floating-point sums, which can flip a rare token). The third path is the one
adgen uses: the cache, and each row stopped once more tokens cannot change its candidate
(``cleaning.settled``); ``same_candidates`` counts the samples whose cleaned candidate
(``candidate_text``) is the same as the cached path's, which runs every row to the token
limit, or over the brief's length limit on both paths (rejected as too long either way:
a stopped row keeps less of a text that was never going to fit).

    python bench/sampling.py [--n 16] [--reps 3] [--locale en|zh] [--seed N]
                             [--torch-threads N] [--quick]

One untimed batch warms the model up first. On a machine other work loads, pass
``--torch-threads 1``: threads that wait on each other make both figures meaningless.

JSON keys: ``n``, ``prompt_tokens``, ``new_tokens``, ``plain_s``, ``cached_s`` and
``settled_s`` (median seconds of one batch), ``speedup`` (plain over cached),
``stop_speedup`` (cached over settled), ``same_texts``, ``same_candidates``, ``samples``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from typing import Any

import torch
from _report import emit, table  # bench/_report.py, beside this script

from adgen.generator import SamplingParams
from adgen.generator.cleaning import candidate_text, settled
from adgen.generator.prompts import build_prompt
from adgen.generator.sampling import sample_raw
from adgen.guardrails.text import length_in
from adgen.loop import BRIEFS_EN, DEMO_BRIEFS, load_briefs, pin_torch_threads
from adgen.model.versions import ModelRegistry
from adgen.settings import Settings


def plain_sample(model: Any, tokenizer: Any, inputs: Any, n: int, seed: int,
                 params: SamplingParams) -> list[str]:
    """The reference: ``generate`` with ``num_return_sequences``, the prompt run n times."""
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        torch.manual_seed(seed)
        out = model.generate(
            **inputs,
            do_sample=True,
            temperature=params.temperature,
            top_p=params.top_p,
            max_new_tokens=params.max_new_tokens,
            num_return_sequences=n,
            pad_token_id=tokenizer.pad_token_id,
        )
    prompt_len = inputs["input_ids"].shape[1]
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in out[:, prompt_len:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16, help="samples per batch")
    parser.add_argument("--reps", type=int, default=3, help="batches of each kind")
    parser.add_argument("--locale", choices=["en", "zh"], default="en")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first batch")
    parser.add_argument("--torch-threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--quick", action="store_true", help="n 4, 1 rep, 12 new tokens")
    args = parser.parse_args()
    pin_torch_threads(args.torch_threads)
    if args.quick:
        args.n, args.reps = 4, 1
    settings = Settings()
    params = SamplingParams.from_settings(settings)
    if args.quick:
        params = SamplingParams(params.temperature, params.top_p, 12)
    briefs = load_briefs(BRIEFS_EN) if args.locale == "en" else load_briefs(DEMO_BRIEFS)
    brief = next(b for b in briefs if b.locale == args.locale)
    registry = ModelRegistry(settings)
    base = registry.bases.serving(registry.base_name_for_locale(args.locale))
    model, tokenizer = base.model, base.tokenizer
    prompt = build_prompt(brief)
    inputs = tokenizer.apply_chat_template(
        prompt.messages(), add_generation_prompt=True, return_tensors="pt", return_dict=True
    ).to(model.device)
    sample_raw(model, tokenizer, prompt, 2, 0, SamplingParams(max_new_tokens=2))  # warm-up
    timings: dict[str, list[float]] = {"plain": [], "cached": [], "settled": []}
    same = same_candidates = total = 0

    def timed(path: str, run: Any, *call: Any) -> Any:
        began = time.perf_counter()
        got = run(model, tokenizer, *call)
        timings[path].append(time.perf_counter() - began)
        return got

    def candidates(raw: list[tuple[str, bool]]) -> list[str | None]:
        """Each sample's candidate; None for one over the length limit."""
        texts = [candidate_text(text, finished, brief) for text, finished in raw]
        return [t if length_in(t, brief.length_unit or "chars") <= limit else None for t in texts]

    stop_when, limit = partial(settled, brief=brief), brief.max_length or 0
    for rep in range(args.reps):
        seed = args.seed + rep
        plain = timed("plain", plain_sample, inputs, args.n, seed, params)
        cached = timed("cached", sample_raw, prompt, args.n, seed, params)
        stopped = timed("settled", sample_raw, prompt, args.n, seed, params, stop_when)
        same += sum(a == b for a, (b, _) in zip(plain, cached, strict=True))
        same_candidates += sum(
            a == b for a, b in zip(candidates(cached), candidates(stopped), strict=True))
        total += args.n
    plain_s, cached_s, settled_s = (statistics.median(t) for t in timings.values())
    table(
        f"{args.n} samples of {params.max_new_tokens} new tokens, {args.reps} batches each "
        f"({inputs['input_ids'].shape[1]} prompt tokens, {torch.get_num_threads()} threads)",
        ["path", "median s per batch", "samples per s"],
        [("prompt once per sample", plain_s, args.n / plain_s),
         ("prompt once, cache copied", cached_s, args.n / cached_s),
         ("cache, settled rows stop", settled_s, args.n / settled_s)],
    )
    emit({
        "bench": "sampling",
        "locale": args.locale,
        "n": args.n,
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "new_tokens": params.max_new_tokens,
        "plain_s": round(plain_s, 3),
        "cached_s": round(cached_s, 3),
        "settled_s": round(settled_s, 3),
        "speedup": round(plain_s / cached_s, 3),
        "stop_speedup": round(cached_s / settled_s, 3),
        "same_texts": same,
        "same_candidates": same_candidates,
        "samples": total,
    })


if __name__ == "__main__":
    main()
