"""DPO's shared-prompt forward: the same log-probabilities and gradients as TRL's plain
forward, with each pair's prompt run once (the real bundled SmolLM2, a LoRA on every layer)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from adgen.model.bases import BaseModels
from adgen.settings import Settings
from adgen.training.config import TrainConfig
from adgen.training.policy import trainable_policy
from adgen.training.shared_prompt import MIN_SHARED, shared_columns, shared_prompt_forward

PROMPTS = [
    "Write one ad headline for Acme trail running shoes, for runners in Berlin. At most 60 "
    "characters, no hashtags.",
    "Beanly, a coffee subscription for busy parents: write one ad headline.",
]
CHOSEN = ["Run the trail faster: Acme, 20% off today", "Fresh coffee at your door every week"]
REJECTED = ["Acme shoes.", "Coffee is here for you now and always, subscribe today to Beanly"]


def test_shared_columns_stop_at_the_first_difference_or_pad() -> None:
    ids = torch.tensor([[1, 2, 3, 4, 5], [1, 2, 9, 9, 0], [1, 2, 3, 7, 0], [1, 2, 9, 9, 9]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    assert shared_columns(ids, mask) == 3  # pair 0 parts at column 3
    assert shared_columns(ids[[0, 1, 0, 1]], mask[[0, 1, 0, 1]]) == 4  # pair 1 pads at 4
    assert shared_columns(ids[:3], mask[:3]) == 0  # odd rows: not a DPO batch
    assert shared_columns(ids[:0], mask[:0]) == 0
    assert shared_columns(ids[[0, 0]], mask[[0, 0]]) == 5  # identical rows share everything


@pytest.fixture(scope="module")
def policy() -> Any:
    """The bundled base under a LoRA on every linear layer, its B matrices made non-zero
    (a fresh LoRA computes the bare base model and would hide what the adapter does)."""
    settings = Settings()
    base, tokenizer = BaseModels(settings).training("smollm2-135m-instruct")
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(base)  # as TRL's DPOTrainer does
    try:
        with trainable_policy(base, None, TrainConfig.from_settings(settings)) as model:
            torch.manual_seed(0)
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    torch.nn.init.normal_(param, std=0.02)
            yield model, tokenizer
    finally:
        vars(base).pop("forward", None)


def _dpo_batch(tokenizer: Any) -> dict[str, torch.Tensor]:
    """A right-padded ``[chosen; rejected]`` batch as TRL builds it, with its labels."""
    prompts = [tokenizer(p).input_ids for p in PROMPTS]
    rows = [p + tokenizer(c).input_ids for p, c in zip(prompts, CHOSEN, strict=True)]
    rows += [p + tokenizer(r).input_ids for p, r in zip(prompts, REJECTED, strict=True)]
    starts = [len(p) for p in prompts] * 2
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    mask, completion = torch.zeros_like(ids), torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        completion[i, starts[i] : len(row)] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": ids.masked_fill(completion == 0, -100),
    }


def _logps_and_grads(
    model: Any, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    model.zero_grad()
    logps = model(**batch, fused_lm_head=True).log_probs.sum(dim=1)
    logps.sum().backward()
    grads = [p.grad.flatten() for p in model.parameters() if p.requires_grad]
    return logps.detach(), torch.cat(grads)


@pytest.mark.slow
def test_each_prompt_runs_once_with_the_same_logps_and_gradients(policy: Any) -> None:
    model, tokenizer = policy
    batch = _dpo_batch(tokenizer)
    backbone = model.get_base_model().base_model
    rows_seen: list[int] = []
    hook = backbone.layers[0].register_forward_pre_hook(
        lambda _module, args: rows_seen.append(int(args[0].shape[0] * args[0].shape[1]))
    )
    try:
        plain_logps, plain_grads = _logps_and_grads(model, batch)
        plain_rows = list(rows_seen)
        rows_seen.clear()
        with shared_prompt_forward(model):
            shared_logps, shared_grads = _logps_and_grads(model, batch)
        shared_rows = list(rows_seen)
        rows_seen.clear()
        after_logps, _ = _logps_and_grads(model, batch)
    finally:
        hook.remove()

    ids, mask = batch["input_ids"], batch["attention_mask"]
    shared = shared_columns(ids, mask)
    assert shared >= min(len(tokenizer(p).input_ids) for p in PROMPTS) >= MIN_SHARED
    # plain: every row's every column once; shared: the prefix for half the rows, then the rest
    assert plain_rows == [ids.numel()]
    assert shared_rows == [ids.shape[0] // 2 * shared, ids.shape[0] * (ids.shape[1] - shared)]
    assert torch.allclose(shared_logps, plain_logps, atol=1e-3, rtol=0)
    assert ((shared_grads - plain_grads).norm() / plain_grads.norm()).item() < 1e-4
    assert torch.equal(after_logps, plain_logps)  # the plain forward is back after the block
    assert "forward" not in vars(backbone)


@pytest.mark.slow
def test_a_batch_that_is_not_pairs_of_one_prompt_runs_the_plain_forward(policy: Any) -> None:
    model, tokenizer = policy
    batch = _dpo_batch(tokenizer)
    odd = {k: v[:3] for k, v in batch.items()}  # three rows: no pairs
    swapped = {k: v[[0, 1, 3, 2]] for k, v in batch.items()}  # pairs of different prompts
    for case in (odd, swapped):
        plain, _ = _logps_and_grads(model, case)
        with shared_prompt_forward(model):
            again, _ = _logps_and_grads(model, case)
        assert torch.equal(plain, again)
