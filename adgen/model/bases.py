"""Base models in memory: the one cache a process holds them in, for serving and training.

A base is loaded on first use and kept, at most once per role:

* ``serving``: in the model's own dtype, with the adapters of the versions that serve
  loaded onto it as named peft adapters, switched under its lock (see
  :class:`adgen.model.versions.ModelRegistry`).
* ``training``: the copy a training cycle wraps in a trainable LoRA and strips again when
  the cycle ends. It cannot be the serving copy: injecting and then unloading the LoRA
  layers would remove the serving adapters under a request, and a cycle holds the model for
  minutes, far longer than a request may wait for the lock. On CPU it is fp32 whatever the
  serving dtype (bf16 training on CPU is slow and imprecise).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from adgen.model.loading import load_model, pick_device, resolve_base_model
from adgen.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class LoadedBase:
    """A base model held in memory, the peft wrapper once an adapter is loaded, and the lock
    that serialises everything that switches adapters or generates with it."""

    name: str
    model: Any
    tokenizer: Any
    peft: Any | None = None
    adapters: dict[str, str] = field(default_factory=dict)
    """adapter folder -> peft adapter name."""
    lock: threading.RLock = field(default_factory=threading.RLock)


class BaseModels:
    """The base models of one process, loaded on first use per name and role; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.device = pick_device(settings.device)
        self._serving: dict[str, LoadedBase] = {}
        self._training: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def serving(self, name: str) -> LoadedBase:
        """Base model ``name`` for generation, in its own dtype."""
        with self._lock:
            loaded = self._serving.get(name)
            if loaded is None:
                model, tokenizer = self._load(name, "serving", training=False)
                loaded = self._serving[name] = LoadedBase(name, model, tokenizer)
            return loaded

    def training(self, name: str) -> tuple[Any, Any]:
        """(model, tokenizer) of base model ``name`` for a training cycle to wrap in LoRA."""
        with self._lock:
            if name not in self._training:
                self._training[name] = self._load(name, "training", training=True)
            return self._training[name]

    def _load(self, name: str, role: str, *, training: bool) -> tuple[Any, Any]:
        resolved = resolve_base_model(name, self.settings.cache_dir)
        dtype = "float32" if training and self.device == "cpu" else resolved.dtype
        logger.info(
            "loading base %s for %s from %s (%s, %s)",
            name,
            role,
            resolved.path,
            self.device,
            dtype,
        )
        return load_model(resolved.path, self.device, dtype)
