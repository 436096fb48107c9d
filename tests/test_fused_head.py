"""TRL's fused LM head scores only the completion tokens on CPU, with the same figures as
when it scores every position (``adgen.training.trl_run.compact_fused_lm_head``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import trl.trainer.utils as trl_utils
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer.utils import add_fused_lm_head

from adgen.training import trl_run


@pytest.fixture
def restore_switch() -> Iterator[None]:
    yield
    trl_run.compact_fused_lm_head(trl_run.SCORE_COMPLETIONS_ONLY)


def test_completion_tokens_only_give_the_same_log_probs(restore_switch: None) -> None:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config).eval()
    add_fused_lm_head(model)
    ids = torch.randint(0, 300, (3, 20))
    labels = ids.clone()
    labels[:, :15] = -100  # a 15-token prompt, a 5-token completion
    cpu = torch.device("cpu")

    def log_probs() -> torch.Tensor:
        with torch.no_grad():
            out: torch.Tensor = model(input_ids=ids, labels=labels, fused_lm_head=True).log_probs
        return out

    assert trl_run.compact_fused_lm_head(False)
    assert trl_utils._use_triton(cpu) is False  # TRL's own choice: every position on CPU
    every = log_probs()
    assert trl_run.compact_fused_lm_head(True)
    assert trl_utils._use_triton(cpu) is True
    compact = log_probs()
    assert torch.allclose(every, compact, atol=1e-5)
    assert (compact[:, :14] == 0).all() and (compact[:, 14:] < 0).all()
