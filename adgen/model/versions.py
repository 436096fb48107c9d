"""Model versions: one base model in memory per base name, LoRA adapters switched on it.

A version is a ``model_versions`` row: a base model name plus an optional LoRA adapter
folder. ``ModelRegistry.load(version)`` loads the base once (per base name) and each
adapter once, as a named peft adapter ``v{id}``; generating with a version activates its
adapter with ``set_adapter``, and the base version runs inside ``disable_adapter()``. The
base weights are never reloaded and adapters are never merged into them, so switching back
to any version, the base included, reproduces it exactly.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from adgen.db.models import ModelVersion
from adgen.errors import ConflictError, ModelError, NotFoundError
from adgen.guardrails import GuardrailConfig, config_from_settings
from adgen.model.loading import load_model, pick_device, resolve_base_model
from adgen.model.locales import base_model_for_locale
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
    adapters: dict[tuple[int, str], str] = field(default_factory=dict)
    """(version id, adapter folder) -> peft adapter name."""
    lock: threading.RLock = field(default_factory=threading.RLock)


@dataclass(frozen=True)
class VersionedModel:
    """A version ready to generate: use ``with vm.activated() as model:``."""

    version_id: int
    base: LoadedBase
    adapter_name: str | None

    @property
    def tokenizer(self) -> Any:
        """The base model's tokenizer (adapters do not change it)."""
        return self.base.tokenizer

    @contextmanager
    def activated(self) -> Iterator[Any]:
        """The model with this version's adapter active (or all adapters off for the base),
        holding the base's lock so no other version switches adapters meanwhile."""
        with self.base.lock:
            peft = self.base.peft
            if peft is None:  # no adapter on this base yet (so this is the base version)
                yield self.base.model
            elif self.adapter_name is None:
                with peft.disable_adapter():
                    yield peft
            else:
                peft.set_adapter(self.adapter_name, inference_mode=True)
                yield peft


class ModelRegistry:
    """Loads base models and versions once per process; thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.device = pick_device(settings.device)
        self._bases: dict[str, LoadedBase] = {}
        self._lock = threading.Lock()

    @cached_property
    def guardrails(self) -> GuardrailConfig:
        """The guardrail configuration in force (read once)."""
        return config_from_settings(self.settings)

    # --- which base, which version ----------------------------------------------------------
    def base_name_for_locale(self, locale: str) -> str:
        """The lineage key (resolved base-model name) that writes ``locale``."""
        name = base_model_for_locale(self.settings, locale)
        return resolve_base_model(name, self.settings.cache_dir).name

    def ensure_base_version(self, session: Session, base_name: str) -> ModelVersion:
        """The version record of the bare base model, created (status active) on first use;
        the caller owns the transaction."""
        if session.get_bind().dialect.name == "postgresql":
            # Two processes starting at once must not both create the base record.
            key = zlib.crc32(f"adgen.base_version:{base_name}".encode())
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        stmt = (
            select(ModelVersion)
            .where(
                ModelVersion.base_model == base_name,
                ModelVersion.adapter_path.is_(None),
                ModelVersion.parent_id.is_(None),
            )
            .order_by(ModelVersion.id)
            .limit(1)
        )
        version = session.scalars(stmt).first()
        if version is None:
            # Active unless the lineage already has an active version (imported records).
            others = select(ModelVersion.id).where(
                ModelVersion.base_model == base_name, ModelVersion.status == "active"
            )
            version = ModelVersion(
                base_model=base_name,
                adapter_path=None,
                status="retired" if session.scalars(others).first() else "active",
                promoted_at=func.now(),
                hyperparams={},
                metrics={},
            )
            session.add(version)
            session.flush()
            session.refresh(version)
            logger.info("created model version %d for base %s", version.id, base_name)
        return version

    def active_version(self, session: Session, base_name: str) -> ModelVersion:
        """The active version of ``base_name``'s lineage (the base record on first use)."""
        base = self.ensure_base_version(session, base_name)
        stmt = (
            select(ModelVersion)
            .where(ModelVersion.base_model == base_name, ModelVersion.status == "active")
            .order_by(ModelVersion.promoted_at.desc().nulls_last(), ModelVersion.id.desc())
            .limit(1)
        )
        active = session.scalars(stmt).first()
        if active is None:
            raise ConflictError(
                f"no version of {base_name} is active (the base is version {base.id}, "
                f"status {base.status}); promote one with `adgen models promote ID`"
            )
        return active

    @staticmethod
    def get_version(session: Session, version_id: int) -> ModelVersion:
        """The version with ``version_id``, or NotFoundError."""
        version = session.get(ModelVersion, version_id)
        if version is None:
            raise NotFoundError(f"model version {version_id} does not exist")
        return version

    # --- weights ----------------------------------------------------------------------------
    def base(self, base_name: str) -> LoadedBase:
        """The base model ``base_name`` in memory, loaded on first use only."""
        with self._lock:
            loaded = self._bases.get(base_name)
            if loaded is None:
                resolved = resolve_base_model(base_name, self.settings.cache_dir)
                logger.info("loading base %s from %s on %s", base_name, resolved.path, self.device)
                model, tokenizer = load_model(resolved.path, self.device, resolved.dtype)
                loaded = LoadedBase(base_name, model, tokenizer)
                self._bases[base_name] = loaded
            return loaded

    def load(self, version: ModelVersion) -> VersionedModel:
        """``version`` ready to generate: its base (shared) plus its adapter (loaded once)."""
        base = self.base(version.base_model)
        if version.adapter_path is None:
            return VersionedModel(version.id, base, None)
        path = self._adapter_dir(version.adapter_path)
        with base.lock:
            name = base.adapters.get((version.id, str(path)))
            if name is None:
                name = self._load_adapter(base, version.id, path)
            return VersionedModel(version.id, base, name)

    def _adapter_dir(self, adapter_path: str) -> Path:
        path = Path(adapter_path)
        path = path if path.is_absolute() else self.settings.models_dir / path
        if not (path / "adapter_config.json").is_file():
            raise ModelError(f"LoRA adapter folder {path} has no adapter_config.json")
        return path

    def _load_adapter(self, base: LoadedBase, version_id: int, path: Path) -> str:
        from peft import PeftModel

        name = f"v{version_id}"
        if name in base.adapters.values():  # same id, another folder: another database
            name = f"{name}-{len(base.adapters)}"
        try:
            if base.peft is None:
                base.peft = PeftModel.from_pretrained(
                    base.model, str(path), adapter_name=name, torch_device=self.device
                )
                base.peft.eval()
            else:
                base.peft.load_adapter(str(path), adapter_name=name, torch_device=self.device)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelError(
                f"could not load the LoRA adapter of version {version_id} from {path}: {exc}"
            ) from exc
        base.adapters[(version_id, str(path))] = name
        logger.info("loaded adapter %s (%s) on base %s", name, path, base.name)
        return name
