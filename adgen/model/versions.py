"""Model versions: the records, their lineage, promotion and rollback, where their adapters
live, and the weights in memory. The one home of everything about a version.

* Records: a version is a ``model_versions`` row: a base model (its lineage key) plus an
  optional LoRA adapter, stored as a content-addressed artifact (``adapter_sha256``, see
  :mod:`adgen.model.artifacts`) that any host fetches; records made before artifacts name a
  folder (``adapter_path``), relative to ``models_dir`` unless absolute.
* Lineage: ``lineage_of(settings, locale)`` is the base model that writes ``locale``.
* State changes (the caller owns the transaction): ``promote`` makes a candidate (or retired)
  version active and retires the previous one (its variants keep competing); ``rollback``
  marks a version rolled_back, pauses its variants, and when it was active reactivates its
  nearest ancestor not rolled back. Each is recorded in ``gate_decisions`` with the live
  figures at that moment.
* Weights: ``ModelRegistry.load(version)`` loads the base once (per base name, through the
  process's :class:`adgen.model.bases.BaseModels`, which training shares) and each
  adapter once, as a named peft adapter; generating with a version activates its adapter
  with ``set_adapter``, and the base version runs inside ``disable_adapter()``. The base
  weights are never reloaded and adapters are never merged into them, so switching back to
  any version, the base included, reproduces it exactly.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, object_session

from adgen.db.models import GateDecision, ModelVersion, Variant
from adgen.errors import ConflictError, ModelError, NotFoundError
from adgen.guardrails import GuardrailConfig, config_from_settings
from adgen.model.artifacts import ArtifactStore, artifact_store
from adgen.model.bases import BaseModels, LoadedBase
from adgen.model.comparison import Comparison, compare
from adgen.model.loading import resolve_base_model
from adgen.model.locales import base_model_for_locale
from adgen.settings import Settings
from adgen.vocabulary import Decider, Decision, VariantStatus, VersionStatus

logger = logging.getLogger(__name__)


# --- lineage and records --------------------------------------------------------------------
def lineage_of(settings: Settings, locale: str) -> str:
    """The lineage key of ``locale``: its base model's resolved name."""
    return resolve_base_model(base_model_for_locale(settings, locale), settings.cache_dir).name


def get_version(session: Session, version_id: int, *, lock: bool = False) -> ModelVersion:
    """Model version ``version_id`` (row-locked on PostgreSQL when ``lock``), or NotFoundError."""
    stmt = select(ModelVersion).where(ModelVersion.id == version_id)
    if lock:
        stmt = stmt.with_for_update()
    version = session.scalars(stmt).first()
    if version is None:
        raise NotFoundError(f"model version {version_id} does not exist")
    return version


def active_of(session: Session, base_name: str, *, lock: bool = False) -> ModelVersion | None:
    """The active version of lineage ``base_name`` (the latest promoted), or None."""
    stmt = (
        select(ModelVersion)
        .where(ModelVersion.base_model == base_name, ModelVersion.status == VersionStatus.ACTIVE)
        .order_by(ModelVersion.promoted_at.desc().nulls_last(), ModelVersion.id.desc())
        .limit(1)
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def active_version(session: Session, base_name: str) -> ModelVersion:
    """The active version of lineage ``base_name``, or ConflictError saying what to do."""
    active = active_of(session, base_name)
    if active is None:
        raise ConflictError(
            f"no version of {base_name} is active: promote one with `adgen models promote ID`"
            " (the base record is created when the lineage first writes variants)"
        )
    return active


def ensure_base_version(session: Session, base_name: str) -> ModelVersion:
    """The version record of the bare base model, created on first use (active unless the
    lineage already has an active version); the caller owns the transaction."""
    if session.get_bind().dialect.name == "postgresql":
        # Two processes starting at once must not both create the base record.
        key = zlib.crc32(f"adgen.base_version:{base_name}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
    stmt = (
        select(ModelVersion)
        .where(
            ModelVersion.base_model == base_name,
            ModelVersion.adapter_path.is_(None),
            ModelVersion.adapter_sha256.is_(None),
            ModelVersion.parent_id.is_(None),
        )
        .order_by(ModelVersion.id)
        .limit(1)
    )
    version = session.scalars(stmt).first()
    if version is None:
        version = ModelVersion(
            base_model=base_name,
            adapter_path=None,
            status=(
                VersionStatus.RETIRED
                if active_of(session, base_name) is not None
                else VersionStatus.ACTIVE
            ),
            promoted_at=func.now(),
            hyperparams={},
            metrics={},
        )
        session.add(version)
        session.flush()
        session.refresh(version)
        logger.info("created model version %d for base %s", version.id, base_name)
    return version


def open_candidates(session: Session, base_name: str | None = None) -> list[ModelVersion]:
    """Candidates still waiting for the gate, oldest first."""
    stmt = (
        select(ModelVersion)
        .where(ModelVersion.status == VersionStatus.CANDIDATE)
        .order_by(ModelVersion.id)
    )
    if base_name is not None:
        stmt = stmt.where(ModelVersion.base_model == base_name)
    return list(session.scalars(stmt))


# --- promotion and rollback -----------------------------------------------------------------
def record_decision(
    session: Session,
    version: ModelVersion,
    incumbent: ModelVersion | None,
    decision: Decision,
    by: Decider,
    comparison: Comparison,
    **details: Any,
) -> GateDecision:
    """Store one gate or operator decision with its figures."""
    row = GateDecision(
        candidate_version_id=version.id,
        incumbent_version_id=incumbent.id if incumbent is not None else None,
        decision=decision,
        decided_by=by,
        prob_better=comparison.prob_better,
        candidate_impressions=comparison.candidate.trials,
        candidate_successes=comparison.candidate.successes,
        incumbent_impressions=comparison.incumbent.trials,
        incumbent_successes=comparison.incumbent.successes,
        details={**comparison.details(), **details},
    )
    session.add(row)
    session.flush()
    return row


def promote(
    session: Session, version_id: int, by: Decider = Decider.OPERATOR, **details: Any
) -> GateDecision:
    """Make ``version_id`` the active version of its lineage; retire the previous one."""
    version = get_version(session, version_id, lock=True)
    if version.status not in (VersionStatus.CANDIDATE, VersionStatus.RETIRED):
        raise ConflictError(
            f"model version {version_id} is {version.status}; only a candidate or a retired "
            "version can be promoted"
        )
    previous = active_of(session, version.base_model, lock=True)
    comparison = compare(session, version, previous)
    now = datetime.now(UTC)
    if previous is not None:
        previous.status = VersionStatus.RETIRED
        previous.retired_at = now
    version.status = VersionStatus.ACTIVE
    version.promoted_at = now
    version.retired_at = None
    logger.info(
        "v%d promoted by %s (previous active: %s)",
        version.id,
        by,
        f"v{previous.id}" if previous else "none",
    )
    return record_decision(session, version, previous, Decision.PROMOTE, by, comparison, **details)


def rollback(
    session: Session, version_id: int, by: Decider = Decider.OPERATOR, **details: Any
) -> GateDecision:
    """Roll ``version_id`` back: pause its variants; reactivate its ancestor if it was active."""
    version = get_version(session, version_id, lock=True)
    if version.status == VersionStatus.ROLLED_BACK:
        raise ConflictError(f"model version {version_id} is already rolled back")
    incumbent = active_of(session, version.base_model, lock=True)
    if version.status == VersionStatus.ACTIVE:
        fallback = _fallback(session, version)
        if fallback is None:
            raise ConflictError(
                f"model version {version_id} is the base of its lineage ({version.base_model}) "
                "and has no ancestor to fall back to"
            )
        fallback.status = VersionStatus.ACTIVE
        fallback.promoted_at = datetime.now(UTC)
        fallback.retired_at = None
        incumbent = fallback
    comparison = compare(session, version, incumbent)
    version.status = VersionStatus.ROLLED_BACK
    version.retired_at = datetime.now(UTC)
    to_pause = list(
        session.scalars(
            select(Variant.id).where(
                Variant.model_version_id == version.id, Variant.status == VariantStatus.ACTIVE
            )
        )
    )
    if to_pause:
        session.execute(
            update(Variant)
            .where(Variant.id.in_(to_pause))
            .values(status=VariantStatus.PAUSED)
            .execution_options(synchronize_session="fetch")
        )
    paused = len(to_pause)
    logger.info(
        "v%d rolled back by %s: %d variants paused, active: %s",
        version.id,
        by,
        paused,
        f"v{incumbent.id}" if incumbent else "none",
    )
    return record_decision(
        session, version, incumbent, Decision.ROLLBACK, by, comparison,
        paused_variants=paused, **details,
    )


def _fallback(session: Session, version: ModelVersion) -> ModelVersion | None:
    """The nearest ancestor of ``version`` that was not rolled back."""
    parent_id = version.parent_id
    while parent_id is not None:
        parent = get_version(session, parent_id, lock=True)
        if parent.status != VersionStatus.ROLLED_BACK:
            return parent
        parent_id = parent.parent_id
    return None


# --- where adapters live --------------------------------------------------------------------
def adapter_folder(
    version: ModelVersion, settings: Settings, store: Callable[[], ArtifactStore]
) -> Path | None:
    """The local folder of ``version``'s LoRA adapter (None for a base version): its
    artifact fetched (and verified) through ``store()``, or, for a record made before
    artifacts, its folder (relative to ``models_dir`` unless absolute)."""
    if version.adapter_sha256 is not None:
        path = store().fetch(version.adapter_sha256)
    elif version.adapter_path is not None:
        path = Path(version.adapter_path)
        path = path if path.is_absolute() else settings.models_dir / path
    else:
        return None
    if not (path / "adapter_config.json").is_file():
        raise ModelError(f"LoRA adapter folder {path} has no adapter_config.json")
    return path


@dataclass(frozen=True)
class VersionedModel:
    """A version ready to generate: use ``with vm.activated() as model:``."""

    version_id: int | None
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
    """Loads base models and versions once per process; thread-safe.

    ``store`` is where adapters are fetched from (default: the store ``ADGEN_ARTIFACT_STORE``
    names, recording in the settings' database).
    """

    def __init__(
        self,
        settings: Settings,
        store: ArtifactStore | None = None,
        bases: BaseModels | None = None,
    ) -> None:
        self.settings = settings
        self.bases = bases or BaseModels(settings)
        self.device = self.bases.device
        self._store = store
        self._stores: dict[str, ArtifactStore] = {}
        self._lock = threading.Lock()

    @cached_property
    def guardrails(self) -> GuardrailConfig:
        """The guardrail configuration in force (read once)."""
        return config_from_settings(self.settings)

    def store_for(self, session: Session | None = None) -> ArtifactStore:
        """The artifact store: the one given at construction, else the configured store
        recording in the database of ``session`` (default: the settings' database), one
        per database."""
        with self._lock:
            if self._store is not None:
                return self._store
            bind = session.get_bind().engine if session is not None else None
            key = bind.url.render_as_string() if bind is not None else self.settings.db_url
            store = self._stores.get(key)
            if store is None:
                store = self._stores[key] = artifact_store(self.settings, session)
            return store

    def base_name_for_locale(self, locale: str) -> str:
        """The lineage key (resolved base-model name) that writes ``locale``."""
        return lineage_of(self.settings, locale)

    def adapter_folder(self, version: ModelVersion, session: Session | None = None) -> Path | None:
        """The local folder of ``version``'s adapter (see :func:`adapter_folder`), fetched
        from the database of ``session`` (default: the one ``version`` was read through)."""
        session = session or object_session(version)
        return adapter_folder(version, self.settings, lambda: self.store_for(session))

    # --- weights ----------------------------------------------------------------------------
    def load(self, version: ModelVersion, session: Session | None = None) -> VersionedModel:
        """``version`` ready to generate: its base (shared) plus its adapter (loaded once per
        adapter folder), fetched through ``session``'s database when given."""
        return self.load_with(version, self.adapter_folder(version, session))

    def load_with(self, version: ModelVersion, path: Path | None) -> VersionedModel:
        """``version`` with the adapter in folder ``path`` (None: the bare base); ``version``
        need not be stored yet (a candidate being rolled out)."""
        base = self.bases.serving(version.base_model)
        if path is None:
            return VersionedModel(version.id, base, None)
        with base.lock:
            name = base.adapters.get(str(path))
            if name is None:
                name = self._load_adapter(base, version, path)
            return VersionedModel(version.id, base, name)

    def _load_adapter(self, base: LoadedBase, version: ModelVersion, path: Path) -> str:
        from peft import PeftModel

        name = f"v{version.id}" if version.id is not None else "candidate"
        if name in base.adapters.values():  # same id, another folder: another database
            name = f"{name}-{len(base.adapters)}"
        label = f"version {version.id}" if version.id is not None else "a new candidate"
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
                f"could not load the LoRA adapter of {label} from {path}: {exc}"
            ) from exc
        base.adapters[str(path)] = name
        logger.info("loaded the adapter of %s as %s from %s on %s", label, name, path, base.name)
        return name
