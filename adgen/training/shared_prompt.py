"""DPO scores each pair's prompt once: the backbone runs the shared prefix of a chosen row
and its rejected twin once, and both completions attend to that one prefix.

TRL's DPO batch is ``[chosen rows; rejected rows]``, row ``i`` and row ``i + B`` being
the same prompt with two completions (right-padded). adgen's prompts are most of each row
(about 130 of 150 tokens), so the policy, its backward pass and the reference each ran
almost every token twice. ``shared_prompt_forward`` wraps the backbone's ``forward`` (the
decoder below the LM head; PEFT's LoRA layers live inside it, so the policy and TRL's
``ref`` adapter both go through it) for the duration of a DPO run:

1. ``c`` = the columns every pair has in common (real tokens, identical in both rows);
2. the first half of the batch runs columns ``[0, c)`` with a key/value cache;
3. the cache is tiled to both halves (``batch_select_indices``: a differentiable gather,
   so gradients reach the prefix's LoRA weights through the keys and values), and the
   whole batch runs columns ``[c, L)`` on top of it, at positions ``c..L-1``;
4. the prefix's hidden states, tiled, and the suffix's are joined into the
   ``(2B, L, hidden)`` output the LM head expects.

The same arithmetic as one forward over every row (causal attention: a prefix position
never sees what follows it), so the same log-probabilities, loss and gradients up to float
rounding; ``bench/train.py`` measures the time (``shared_prompt_speedup``). A batch whose
pairs share fewer than ``MIN_SHARED`` columns, or any call that is not such a batch (a
cache given, embeddings instead of ids, no mask), runs the plain forward.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Fewer shared columns than this are not worth a second backbone call.
MIN_SHARED = 8


def shared_columns(input_ids: Any, attention_mask: Any) -> int:
    """Leading columns where every row ``i`` of the first half equals row ``i + B`` of the
    second and both are real tokens (mask 1); 0 for a batch of odd or no rows."""
    rows = int(input_ids.shape[0])
    if rows == 0 or rows % 2:
        return 0
    half = rows // 2
    same = (input_ids[:half] == input_ids[half:]) & (attention_mask[:half] == 1)
    same &= attention_mask[half:] == 1
    return int(same.all(dim=0).int().cumprod(dim=0).sum())


def _backbone(model: Any) -> Any:
    """The decoder under ``model``'s LM head (through a ``PeftModel`` when it is one)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.base_model


@contextmanager
def shared_prompt_forward(model: Any) -> Iterator[None]:
    """Within the block, ``model``'s backbone runs each pair's shared prefix once (see the
    module docstring); on exit its own ``forward`` is back."""
    from transformers.modeling_outputs import BaseModelOutputWithPast

    backbone = _backbone(model)
    plain = backbone.forward
    had_own = "forward" in vars(backbone)

    @functools.wraps(plain)
    def forward(input_ids: Any = None, attention_mask: Any = None, **kwargs: Any) -> Any:
        plain_call = functools.partial(plain, input_ids=input_ids, attention_mask=attention_mask)
        if (
            input_ids is None
            or attention_mask is None
            or any(kwargs.get(k) is not None for k in ("cache", "inputs_embeds", "position_ids"))
        ):
            return plain_call(**kwargs)
        length = int(input_ids.shape[1])
        shared = min(shared_columns(input_ids, attention_mask), length - 1)
        if shared < MIN_SHARED:
            return plain_call(**kwargs)
        import torch

        half = int(input_ids.shape[0]) // 2
        kwargs["use_cache"] = True
        prefix = plain(
            input_ids=input_ids[:half, :shared],
            attention_mask=attention_mask[:half, :shared],
            **kwargs,
        )
        cache = prefix.cache
        cache.batch_select_indices(torch.arange(half, device=input_ids.device).repeat(2))
        suffix = plain(
            input_ids=input_ids[:, shared:], attention_mask=attention_mask, cache=cache, **kwargs
        )
        hidden = torch.cat(
            [prefix.last_hidden_state.repeat(2, 1, 1), suffix.last_hidden_state], dim=1
        )
        return BaseModelOutputWithPast(last_hidden_state=hidden)

    backbone.forward = forward
    try:
        yield
    finally:
        if had_own:
            backbone.forward = plain
        else:
            vars(backbone).pop("forward", None)
