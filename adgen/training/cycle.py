"""One training cycle for one lineage (base model), recorded in ``training_runs``.

1. Take the trainer lock (PostgreSQL advisory lock / a lock file on SQLite); when another
   run holds it, record a ``skipped`` run and train nothing.
2. Train the reward model (the reward engineer's ``train_and_store``) and load the active one.
3. Check there is something to learn: an active campaign of the lineage, events since the
   last successful run's data window, and at least ``min_pairs`` preference pairs.
   Otherwise the run is ``skipped`` with the reason.
4. Build the data (live pairs, reward-model-ranked samples, KTO examples, held-out pairs),
   train a LoRA adapter over the active (parent) version, save only the adapter files.
   Step 4 trains nothing, and no version is made, when a candidate of the lineage is still
   before the gate (one candidate at a time: the gate compares it with the serving
   version) or ``train_policy`` is off (``ADGEN_TRAIN_POLICY=false``). The serving version
   then writes the rollout's variants itself (best-of-N by the reward model), so the
   lineage's campaigns keep getting fresh, reward-ranked copy while a candidate waits.
5. Store the adapter as an artifact (sha256, in the database), let the candidate and the
   serving version each write variants for the lineage's active campaigns (rollout,
   outside any transaction), then in one short transaction: the ``candidate`` version row
   referencing its artifact, both sets of variants and the run's ``succeeded`` record. The
   serving version's fresh best keep the campaigns improving by selection while the
   candidate is tried, and the gate compares the candidate with them. A failure anywhere
   records the run ``failed`` with its error and re-raises.

Every run samples with its own seed (``cycle_seed``: the training seed and the run id), so
a version writing again does not re-draw its last run's samples (whose kept texts the
near-duplicate guardrail would refuse, leaving only what that run had left over).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from adgen.brief import Brief
from adgen.db.campaigns import brief_of
from adgen.db.engine import transaction
from adgen.db.models import Campaign, ModelVersion, Variant
from adgen.errors import InsufficientEvidence, ModelError
from adgen.generator.prompts import build_prompt
from adgen.generator.sampling import SamplingParams
from adgen.guardrails import config_from_settings
from adgen.model.artifacts import ADAPTER
from adgen.model.versions import (
    ModelRegistry,
    active_version,
    ensure_base_version,
    lineage_of,
    open_candidates,
)
from adgen.reward.training import active_record, load_active, train_and_store
from adgen.settings import Settings
from adgen.training.config import TrainConfig
from adgen.training.evidence import campaign_evidence, evidence_window, lineage_campaigns
from adgen.training.lock import training_lock
from adgen.training.online import guarded_reward
from adgen.training.pairs import (
    binary_examples,
    examples_from_pairs,
    live_pairs,
    split_heldout,
)
from adgen.training.policy import trainable_policy
from adgen.training.ranked import sampled_pairs
from adgen.training.rollout import Draft, plan_rollout, store_rollout, write_rollout
from adgen.training.runner import TrainingData, fit
from adgen.training.runs import finish_run, last_succeeded, start_run
from adgen.vocabulary import CampaignStatus, RunStatus, VersionStatus

logger = logging.getLogger(__name__)

LOCKED = "another training run holds the trainer lock; this one trains nothing"
POLICY_OFF = "policy training off: the serving version wrote the new variants"


def cycle_seed(seed: int, run_id: int) -> int:
    """The sampling seed of run ``run_id``: reproducible, and different for every run."""
    return int(np.random.SeedSequence([seed, run_id]).generate_state(1)[0])


def waiting_reason(candidate_id: int) -> str:
    """Why a cycle refreshed instead of training: a candidate is still before the gate."""
    return (
        f"candidate v{candidate_id} is still before the gate: no new candidate until it is "
        "decided; the serving version wrote the new variants"
    )


@dataclass
class CycleResult:
    """The outcome of one cycle: its run record, and the candidate when one was made."""

    run_id: int
    status: str
    base_model: str
    reason: str | None = None
    candidate_version_id: int | None = None
    variant_ids: list[int] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


def run_cycle(
    settings: Settings,
    sessions: sessionmaker[Session],
    registry: ModelRegistry,
    base_name: str | None = None,
    progress: bool = True,
    *,
    config: TrainConfig | None = None,
) -> CycleResult:
    """Run one training cycle for lineage ``base_name`` (default: the English base model).

    The base model comes from ``registry.bases`` (loaded once per process); ``config``
    overrides the training configuration the settings describe.
    """
    base = base_name or lineage_of(settings, "en")
    config = config or TrainConfig.from_settings(settings)
    start = time.perf_counter()
    engine: Engine = sessions.kw["bind"]
    with training_lock(engine, settings.var_dir) as held:
        if not held:
            logger.info("training cycle for %s skipped: %s", base, LOCKED)
            with transaction(sessions) as session:
                run_id = start_run(session, base, config).id
                elapsed = time.perf_counter() - start
                finish_run(session, run_id, RunStatus.SKIPPED, elapsed, reason=LOCKED)
            return CycleResult(
                run_id, RunStatus.SKIPPED, base, LOCKED, duration_s=time.perf_counter() - start
            )
        with transaction(sessions) as session:
            run_id = start_run(session, base, config).id
        cycle = _Cycle(settings, sessions, registry, base, config, run_id, progress, start)
        return cycle.run()


class _Cycle:
    """The steps of one cycle; ``fields`` and ``metrics`` accumulate the run record."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        registry: ModelRegistry,
        base: str,
        config: TrainConfig,
        run_id: int,
        progress: bool,
        start: float,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.registry = registry
        self.base = base
        self.config = config
        self.run_id = run_id
        self.progress = progress
        self.start = start
        self.fields: dict[str, Any] = {}
        self.metrics: dict[str, Any] = {}
        self.reason: str | None = None  # why the serving version wrote variants instead
        self.work_dir = settings.models_dir / f".run{run_id}"
        self.sample_seed = cycle_seed(config.seed, run_id)

    def run(self) -> CycleResult:
        """All steps; the run is recorded whatever happens."""
        try:
            candidate_id, variant_ids = self._steps()
        except InsufficientEvidence as exc:
            return self._close(RunStatus.SKIPPED, reason=str(exc))
        except Exception as exc:
            logger.exception("training cycle for %s failed", self.base)
            self._close(RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        result = CycleResult(
            self.run_id,
            RunStatus.SUCCEEDED,
            self.base,
            reason=self.reason,
            candidate_version_id=candidate_id,
            variant_ids=variant_ids,
            metrics=self.metrics,
            duration_s=self._elapsed(),
        )
        logger.info(
            "training cycle for %s: %s with %d variants in %.1f s",
            self.base,
            f"candidate v{candidate_id}" if candidate_id is not None else self.reason,
            len(variant_ids),
            result.duration_s,
        )
        return result

    def _elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _close(self, status: str, **outcome: Any) -> CycleResult:
        duration = self._elapsed()
        with transaction(self.sessions) as session:
            finish_run(
                session,
                self.run_id,
                status,
                duration,
                metrics=self.metrics,
                **outcome,
                **self.fields,
            )
        if status == RunStatus.SKIPPED:
            logger.info("training cycle for %s skipped: %s", self.base, outcome.get("reason"))
        return CycleResult(
            self.run_id,
            status,
            self.base,
            outcome.get("reason"),
            metrics=self.metrics,
            duration_s=duration,
        )

    def _timed(self, stage: str, began: float) -> None:
        self.metrics[f"{stage}_s"] = round(time.perf_counter() - began, 2)

    # --- the steps -----------------------------------------------------------------------
    def _steps(self) -> tuple[int | None, list[int]]:
        began = time.perf_counter()
        with transaction(self.sessions) as session:
            train_and_store(session, self.settings)
            reward_model = load_active(session, self.settings)
            record = active_record(session)
            self.fields["reward_model_id"] = record.id if record is not None else None
        self._timed("reward_model", began)
        if not self.config.is_preference and reward_model is None:
            raise InsufficientEvidence(
                f"{self.config.trainer} scores completions with the reward model, and there is "
                "none yet (too little evidence to train one)"
            )

        with transaction(self.sessions) as session:  # commits the base version on first use
            ensure_base_version(session, self.base)
            parent = active_version(session, self.base)
            self.fields["parent_version_id"] = parent.id
        with transaction(self.sessions) as session:
            briefs, data = self._gather(session)
            waiting = open_candidates(session, self.base)
        if not self.settings.train_policy:
            return None, self._refresh(parent, reward_model, POLICY_OFF)
        if waiting:
            return None, self._refresh(parent, reward_model, waiting_reason(waiting[0].id))
        with self.sessions() as session:
            parent_adapter = self.registry.adapter_folder(parent, session)
        use_rm = reward_model is not None and self.settings.rm_samples > 0
        if self.config.is_preference and not use_rm:
            self._check_enough(data)  # before loading any model

        began = time.perf_counter()
        base_model, tokenizer = self.registry.bases.training(self.base)
        with trainable_policy(base_model, parent_adapter, self.config) as policy:
            self._timed("load", began)
            if self.config.is_preference and use_rm:
                began = time.perf_counter()
                ranked = sampled_pairs(
                    policy,
                    tokenizer,
                    briefs,
                    reward_model,
                    config_from_settings(self.settings),
                    self.settings.rm_samples,
                    self.settings.rm_pairs_k,
                    self.sample_seed,
                    SamplingParams.from_settings(self.settings),
                    progress=self.progress,
                )
                data.pairs.extend(ranked)
                data.examples.extend(examples_from_pairs(ranked))
                self._timed("sample", began)
                self._check_enough(data)
            reward_fn = None
            if not self.config.is_preference and reward_model is not None:
                reward_fn = guarded_reward(
                    reward_model, [b for _, b in briefs], config_from_settings(self.settings)
                )
            self.metrics.update(
                fit(
                    policy,
                    tokenizer,
                    data,
                    self.config,
                    self.work_dir,
                    reward_fn=reward_fn,
                    use_cpu=self.registry.device == "cpu",
                    progress=self.progress,
                )
            )
            lora = policy.peft_config["default"]
            self.fields["hyperparams"] = {
                **self.config.as_dict(),
                "lora_r": lora.r,
                "lora_alpha": lora.lora_alpha,
                "lora_targets": sorted(lora.target_modules),
                "lora_from_parent": parent_adapter is not None,
            }
        return self._publish(parent, reward_model)

    def _gather(self, session: Session) -> tuple[list[tuple[int, Brief]], TrainingData]:
        """The active campaigns' briefs and the training data, or InsufficientEvidence."""
        campaigns = lineage_campaigns(session, self.settings, self.base)
        active = [c for c in campaigns if c.status == CampaignStatus.ACTIVE]
        if not active:
            raise InsufficientEvidence(
                f"no active campaign uses {self.base}: nothing to roll out to"
            )
        first, last = evidence_window(session, [c.id for c in campaigns])
        self.fields.update(data_window_start=first, data_window_end=last)
        if last is None:
            raise InsufficientEvidence(f"no events yet for the campaigns of {self.base}")
        previous = last_succeeded(session, self.base)
        ended = previous.data_window_end if previous is not None else None
        if previous is not None and ended is not None and last <= ended:
            raise InsufficientEvidence(
                f"no events since the last successful run #{previous.id} "
                f"(its data window ended {ended.isoformat()})"
            )
        evidence = campaign_evidence(session, campaigns)
        threshold = self.settings.pair_threshold
        train, heldout = split_heldout(evidence, self.settings.heldout_share, self.config.seed)
        briefs = [(c.id, brief_of(c)) for c in active]
        data = TrainingData(
            pairs=live_pairs(train, threshold),
            examples=binary_examples(train, threshold),
            heldout=live_pairs(heldout, threshold),
            prompts=[build_prompt(b).messages() for _, b in briefs],
        )
        self.metrics.update(data.counts())
        return briefs, data

    def _check_enough(self, data: TrainingData) -> None:
        self.metrics.update(data.counts())
        if self.config.is_preference and len(data.pairs) < self.settings.min_pairs:
            raise InsufficientEvidence(
                f"too little evidence: {len(data.pairs)} preference pairs "
                f"(P(better) >= {self.settings.pair_threshold}, plus reward-model pairs), "
                f"fewer than min_pairs={self.settings.min_pairs}"
            )

    def _publish(self, parent: ModelVersion, reward_model: Any) -> tuple[int, list[int]]:
        """Store the adapter, let the candidate and the serving version write their variants
        (no transaction open), then the candidate row, both sets of variants (the serving
        version's marked ``rollout_of`` the candidate: the gate's comparison) and the run
        record in one short transaction; returns the candidate's id and served variants."""
        began = time.perf_counter()
        with self.sessions() as session:
            store = self.registry.store_for(session)
        digest = store.put(self.work_dir, ADAPTER)
        version = ModelVersion(
            base_model=self.base,
            parent_id=parent.id,
            status=VersionStatus.CANDIDATE,
            adapter_sha256=digest,
            data_window_start=self.fields.get("data_window_start"),
            data_window_end=self.fields.get("data_window_end"),
            hyperparams=self.fields["hyperparams"],
        )
        drafts = self._write(version, reward_model)
        if not any(d.result.accepted for d in drafts):
            raise ModelError(
                "the new candidate wrote no variant that passed the guardrails; it is discarded"
            )
        fresh = self._write(parent, reward_model)
        with transaction(self.sessions) as session:
            session.add(version)
            session.flush()
            served = store_rollout(session, parent.id, fresh, self.settings.rollout_variants)
            for variant_id in served:  # the texts the gate compares the candidate with
                session.get_one(Variant, variant_id).rollout_of = version.id
            self.metrics["serving_variants"] = len(served)
            variant_ids = self._store(session, version.id, drafts, began)
            version.metrics = dict(self.metrics)
        return version.id, variant_ids

    def _refresh(self, serving: ModelVersion, reward_model: Any, reason: str) -> list[int]:
        """No candidate this cycle (``reason``): the serving version writes the rollout's
        variants (best-of-N by the reward model) for its active campaigns."""
        self.reason = reason
        began = time.perf_counter()
        drafts = self._write(serving, reward_model)
        with transaction(self.sessions) as session:
            return self._store(session, serving.id, drafts, began)

    def _write(self, version: ModelVersion, reward_model: Any) -> list[Draft]:
        """The rollout's variants of ``version`` (stored or not) for the active campaigns."""
        with self.sessions() as session:
            campaigns = list(
                session.scalars(
                    select(Campaign)
                    .where(Campaign.id.in_(self._active_ids(session)))
                    .order_by(Campaign.id)
                )
            )
            jobs = plan_rollout(
                session,
                self.registry,
                version,
                campaigns,
                self.settings.rollout_variants,
                self.settings.rollout_best_of,
                self.sample_seed,
                with_reward_model=reward_model is not None,
            )
        return write_rollout(self.registry, jobs, reward_model)

    def _store(
        self, session: Session, version_id: int, drafts: list[Draft], began: float
    ) -> list[int]:
        """``drafts`` as ``version_id``'s variants, and the run's ``succeeded`` record."""
        variant_ids = store_rollout(session, version_id, drafts, self.settings.rollout_variants)
        self._timed("rollout", began)
        self.metrics["rollout_variants"] = len(variant_ids)
        finish_run(
            session,
            self.run_id,
            RunStatus.SUCCEEDED,
            self._elapsed(),
            reason=self.reason,
            metrics=self.metrics,
            candidate_version_id=None if self.reason else version_id,
            **self.fields,
        )
        return variant_ids

    def _active_ids(self, session: Session) -> list[int]:
        return [
            c.id for c in lineage_campaigns(session, self.settings, self.base, active_only=True)
        ]
