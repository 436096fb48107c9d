"""Summed completion log-probabilities under a model, and the pair margin they give.

The held-out metric of a run: for each held-out pair, log p(chosen | prompt) −
log p(rejected | prompt), each the sum over the completion's tokens (as TRL tokenises a
conversational example: the chat template of prompt + assistant turn, the completion
starting where it departs from the prompt rendered with the generation prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adgen.training.pairs import Messages, PreferencePair


def completion_logprobs(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    completions: Sequence[str],
    *,
    batch_size: int = 8,
    max_length: int = 128,
) -> np.ndarray:
    """Sum of log p(token) over each completion's tokens given its prompt (no gradients)."""
    import torch

    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    sequences: list[tuple[list[int], int]] = []
    for prompt, completion in zip(prompts, completions, strict=True):
        prompt_ids = tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, tokenize=True
        )
        full_ids = tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": completion}], tokenize=True
        )
        prompt_ids, full_ids = _ids(prompt_ids), _ids(full_ids)
        start = _common_prefix(prompt_ids, full_ids)
        sequences.append((full_ids[:max_length], min(start, max_length)))

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = np.zeros(len(sequences))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, len(sequences), batch_size):
                chunk = sequences[lo : lo + batch_size]
                width = max(len(ids) for ids, _ in chunk)
                input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                attention = torch.zeros((len(chunk), width), dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.bool)
                for row, (ids, start) in enumerate(chunk):
                    input_ids[row, : len(ids)] = torch.tensor(ids)
                    attention[row, : len(ids)] = 1
                    mask[row, start : len(ids)] = True
                logits = model(
                    input_ids=input_ids.to(device), attention_mask=attention.to(device)
                ).logits.float()
                logp = torch.log_softmax(logits[:, :-1], dim=-1)
                token_logp = logp.gather(-1, input_ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
                summed = (token_logp * mask[:, 1:].to(device)).sum(dim=-1)
                out[lo : lo + len(chunk)] = summed.cpu().numpy()
    finally:
        model.train(was_training)
    return out


def pair_margins(
    model: Any, tokenizer: Any, pairs: Sequence[PreferencePair], *, max_length: int = 128
) -> np.ndarray:
    """log p(chosen) − log p(rejected) for each pair (summed completion log-probs)."""
    if not pairs:
        return np.zeros(0)
    prompts = [p.prompt for p in pairs]
    chosen = completion_logprobs(
        model, tokenizer, prompts, [p.chosen for p in pairs], max_length=max_length
    )
    rejected = completion_logprobs(
        model, tokenizer, prompts, [p.rejected for p in pairs], max_length=max_length
    )
    return chosen - rejected


def _ids(encoded: Any) -> list[int]:
    # transformers 5 returns a BatchEncoding from apply_chat_template(tokenize=True)
    if hasattr(encoded, "keys") and "input_ids" in encoded:
        encoded = encoded["input_ids"]
    return [int(i) for i in encoded]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
