"""The trainable policy: a LoRA adapter over a base model, started from the parent version.

A cycle takes its base from the process's ``BaseModels.training`` (loaded once per base name
and reused): wrapping a base in LoRA injects adapter layers, and ``trainable_policy`` removes
them again on exit (``unload``), leaving the base weights untouched.

The reference of DPO/KTO: ``trainable_policy`` always hands TRL a ``PeftModel`` without a
``peft_config``, and TRL then copies the starting adapter into a frozen ``ref`` adapter. So
the reference is always the *parent version*: its adapter when it has one, otherwise a
fresh zero-initialised LoRA (B = 0), which computes exactly the bare base model — the same
as TRL's ``peft_config`` path, where the reference is the model with adapters disabled.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adgen.errors import ModelError
from adgen.training.config import TrainConfig

logger = logging.getLogger(__name__)

#: The only files a version's adapter folder holds.
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@contextmanager
def trainable_policy(base: Any, parent_adapter: Path | None, config: TrainConfig) -> Iterator[Any]:
    """A trainable ``PeftModel`` over ``base``: the parent's adapter, or a fresh LoRA.

    On exit every adapter layer is removed again, so ``base`` can be reused.
    """
    from peft import LoraConfig, PeftModel

    # TRL patches the instance's forward (a fused LM head); put the class's back on exit.
    patched_before = "forward" in vars(base)
    if parent_adapter is not None:
        if not (parent_adapter / "adapter_config.json").is_file():
            raise ModelError(
                f"the parent version's adapter folder {parent_adapter} holds no "
                "adapter_config.json; roll the parent back or restore its adapter files"
            )
        model = PeftModel.from_pretrained(base, str(parent_adapter), is_trainable=True)
    else:
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            target_modules=list(config.lora_targets),
            lora_dropout=0.0,
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            model = _fresh_lora(base, lora, config.seed)
        except ValueError as exc:
            raise ModelError(
                f"LoRA targets {list(config.lora_targets)} do not fit this model: {exc}; "
                "set ADGEN_LORA_TARGETS to module names it has (e.g. q_proj,v_proj)"
            ) from exc
    try:
        yield model
    finally:
        model.unload()
        if not patched_before:
            vars(base).pop("forward", None)
        base.eval()


def _fresh_lora(base: Any, lora: Any, seed: int) -> Any:
    """``get_peft_model`` with the adapter's random initialisation drawn from ``seed``.

    peft draws the new A matrices from torch's global generator, whose state depends on
    whatever ran before in the process: two runs of one cycle on the same data trained
    different adapters. The global generator is left as it was.
    """
    import torch
    from peft import get_peft_model

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return get_peft_model(base, lora)


def save_adapter(model: Any, out_dir: Path) -> float:
    """Write only the trained adapter's files to ``out_dir``; return their size in MB."""
    tmp = out_dir.with_name(f"{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), selected_adapters=["default"])
    missing = [f for f in ADAPTER_FILES if not (tmp / f).is_file()]
    if missing:
        raise ModelError(f"saving the adapter wrote no {missing} in {tmp}")
    for extra in tmp.iterdir():
        if extra.name not in ADAPTER_FILES:
            if extra.is_dir():
                shutil.rmtree(extra)
            else:
                extra.unlink()
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return sum((out_dir / f).stat().st_size for f in ADAPTER_FILES) / 1e6
