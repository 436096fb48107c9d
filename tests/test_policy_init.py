"""A fresh LoRA adapter starts from the training seed, whatever the process drew before:
two runs of one training cycle on the same data train the same adapter."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from adgen.settings import Settings
from adgen.training.config import TrainConfig
from adgen.training.policy import trainable_policy


def _base() -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    return LlamaForCausalLM(config).eval()


def _fresh_adapter(base: LlamaForCausalLM, seed: int) -> dict[str, torch.Tensor]:
    config = TrainConfig.from_settings(Settings(), seed=seed)
    with trainable_policy(base, None, config) as model:
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_a_fresh_adapter_depends_on_the_seed_not_on_what_ran_before() -> None:
    base = _base()
    torch.manual_seed(1)
    first = _fresh_adapter(base, seed=7)
    torch.manual_seed(2)
    torch.rand(1000)  # other work drew from the global generator in between
    second = _fresh_adapter(base, seed=7)
    other = _fresh_adapter(base, seed=8)

    assert first and any("lora_A" in n for n in first)
    assert first.keys() == second.keys() == other.keys()
    assert all(torch.equal(first[n], second[n]) for n in first)
    assert not all(torch.equal(first[n], other[n]) for n in first if "lora_A" in n)


def test_the_global_generator_is_left_as_it_was() -> None:
    base = _base()
    torch.manual_seed(3)
    expected = torch.rand(5)
    torch.manual_seed(3)
    _fresh_adapter(base, seed=7)
    assert torch.equal(torch.rand(5), expected)
