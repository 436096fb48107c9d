"""Training cycles on logged evidence: real PostgreSQL, the real bundled SmolLM2, few steps."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import seed_evidence as seed
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from adgen.cli.main import app as cli
from adgen.db.models import ModelVersion, TrainingRun, Variant
from adgen.errors import ModelError
from adgen.model.bases import BaseModels
from adgen.model.versions import ModelRegistry, ensure_base_version, promote
from adgen.settings import Settings, get_settings
from adgen.training.cycle import (
    LOCKED,
    POLICY_OFF,
    CycleResult,
    run_cycle,
    waiting_reason,
)
from adgen.training.evidence import campaign_evidence, lineage_campaigns
from adgen.training.logprobs import pair_margins
from adgen.training.pairs import live_pairs, split_heldout
from adgen.training.policy import ADAPTER_FILES

pytestmark = pytest.mark.slow  # loads the real model and trains

BASE = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def bases() -> BaseModels:
    """The bundled base model, loaded once for the whole module."""
    return BaseModels(Settings())


@pytest.fixture
def registry(train_settings: Settings, bases: BaseModels) -> Iterator[ModelRegistry]:
    """The generator's registry (version ids restart with each test database)."""
    yield ModelRegistry(train_settings, bases=bases)


@pytest.fixture
def train_settings(pg_url: str, tmp_path: Path) -> Settings:
    """Few steps, short sequences, small rollouts: a cycle in tens of seconds on a CPU."""
    return Settings(
        database_url=pg_url,
        var_dir=tmp_path / "var",
        train_steps=6,
        train_batch_size=4,
        max_length=96,
        heldout_share=0.3,
        min_pairs=8,
        rm_samples=4,
        reward_min_arms=10,
        reward_embeddings="none",
        rollout_variants=1,
        rollout_best_of=2,
        gen_max_new_tokens=24,
    )


def _seed_winners_and_losers(sessions: sessionmaker[Session]) -> int:
    """A campaign where texts with a number or a call to action clearly win (10% vs 2%)."""
    with sessions.begin() as session:
        cid = seed.campaign(session)
        seed.arms(
            session,
            cid,
            [(t, 400, 40) for t in seed.WINNERS] + [(t, 400, 8) for t in seed.LOSERS],
        )
    return cid


def _runs(session: Session) -> list[TrainingRun]:
    return list(session.scalars(sa.select(TrainingRun).order_by(TrainingRun.id)))


def _heldout_margins(
    sessions: sessionmaker[Session], settings: Settings, bases: BaseModels, adapter: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out margins recomputed here: base model, then base + the saved adapter."""
    from peft import PeftModel

    with sessions() as session:
        evidence = campaign_evidence(session, lineage_campaigns(session, settings, BASE))
    _, heldout = split_heldout(evidence, settings.heldout_share, settings.train_seed)
    pairs = live_pairs(heldout, settings.pair_threshold)
    base, tokenizer = bases.training(BASE)
    before = pair_margins(base, tokenizer, pairs, max_length=settings.max_length)
    tuned = PeftModel.from_pretrained(base, str(adapter))
    try:
        after = pair_margins(tuned, tokenizer, pairs, max_length=settings.max_length)
    finally:
        tuned.unload()
    return before, after


def test_dpo_cycle_makes_a_candidate_that_prefers_held_out_winners_and_runs_alone(
    pg_sessions: sessionmaker[Session],
    train_settings: Settings,
    registry: ModelRegistry,
) -> None:
    cid = _seed_winners_and_losers(pg_sessions)
    results: list[CycleResult] = []
    start = threading.Barrier(2)

    def cycle() -> None:
        start.wait()
        results.append(run_cycle(train_settings, pg_sessions, registry, progress=False))

    threads = [threading.Thread(target=cycle) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # two concurrent runs on one database: one trains, the other is skipped and says why
    assert sorted(r.status for r in results) == ["skipped", "succeeded"]
    skipped = next(r for r in results if r.status == "skipped")
    done = next(r for r in results if r.status == "succeeded")
    assert skipped.reason == LOCKED and skipped.candidate_version_id is None

    m = done.metrics
    assert m["pairs_live"] >= 8 and m["heldout_pairs"] >= 2 and m["steps"] == 6
    assert m["heldout_margin_after"] > m["heldout_margin_before"]
    assert m["train_loss"] is not None and m["reward_margin_final"] > 0
    assert 0 < m["adapter_mb"] < 12  # LoRA r=8 on every linear layer: about 9.8 MB

    with pg_sessions() as session:
        candidate = session.get_one(ModelVersion, done.candidate_version_id)
        runs = _runs(session)
        written = list(
            session.scalars(
                sa.select(Variant).where(
                    Variant.model_version_id == candidate.id, Variant.status != "rejected"
                )
            )
        )
        # beside the candidate, the serving version wrote its own reward-ranked best
        serving_new = list(
            session.scalars(
                sa.select(Variant).where(
                    Variant.model_version_id == candidate.parent_id,
                    Variant.reward_score.is_not(None),
                    Variant.status == "active",
                )
            )
        )
    assert len(serving_new) == m["serving_variants"] == train_settings.rollout_variants
    # ... marked as the texts the gate compares the candidate with; the candidate's are not
    assert {v.rollout_of for v in serving_new} == {candidate.id}
    assert {v.rollout_of for v in written} == {None}
    assert not {v.text for v in serving_new} & {v.text for v in written}
    assert candidate.status == "candidate" and candidate.base_model == BASE
    assert candidate.parent_id is not None and candidate.data_window_end is not None
    assert candidate.hyperparams["trainer"] == "dpo" and candidate.hyperparams["lora_r"] == 8
    assert candidate.hyperparams["learning_rate"] == train_settings.learning_rate
    assert candidate.hyperparams["sft_weight"] == train_settings.dpo_sft_weight == 1.0
    assert candidate.metrics["heldout_margin_after"] == m["heldout_margin_after"]
    # the adapter is an artifact in the database (no folder left behind in models_dir)
    assert candidate.adapter_path is None and candidate.adapter_sha256 is not None
    adapter = registry.adapter_folder(candidate)
    assert adapter is not None and adapter.name == candidate.adapter_sha256
    assert sorted(p.name for p in adapter.iterdir()) == sorted(ADAPTER_FILES)
    assert not any(train_settings.models_dir.iterdir())

    # the rollout: the reward model's best of the candidate's variants compete, the rest wait
    served = [v for v in written if v.status == "active"]
    ranked_out = [v for v in written if v.status == "paused"]
    assert [v.id for v in served] == done.variant_ids and len(served) == 1
    assert all(v.campaign_id == cid and v.guardrail_report["passed"] for v in written)
    assert all(v.reward_score is not None for v in written)
    assert all(v.reward_score <= served[0].reward_score for v in ranked_out)  # type: ignore[operator]

    # the run record is complete
    by_status = {r.status: r for r in runs}
    run = by_status["succeeded"]
    assert (run.id, run.candidate_version_id, run.parent_version_id) == (
        done.run_id,
        candidate.id,
        candidate.parent_id,
    )
    assert run.finished_at is not None and run.duration_s is not None and run.duration_s > 0
    assert run.data_window_start is not None and run.data_window_end is not None
    assert run.metrics["heldout_accuracy_after"] is not None and run.error is None
    assert run.reward_model_id is not None  # trained first, then used to rank
    # fresh samples were ranked: n samples of one campaign make at most n²/4 pairs (the
    # best passing ones over the rest)
    assert "sample_s" in m and m["pairs_reward_model"] <= train_settings.rm_samples**2 // 4
    assert by_status["skipped"].reason == LOCKED

    # the saved adapter, loaded afresh, raises the held-out margin over the base model
    before, after = _heldout_margins(pg_sessions, train_settings, registry.bases, adapter)
    assert after.mean() > before.mean()
    assert after.mean() == pytest.approx(m["heldout_margin_after"], abs=1e-2)

    # once decided, a run with no new evidence trains nothing and says why
    with pg_sessions.begin() as session:
        promote(session, candidate.id)
    again = run_cycle(train_settings, pg_sessions, registry, progress=False)
    assert again.status == "skipped" and again.candidate_version_id is None
    assert (
        again.reason is not None
        and f"no events since the last successful run #{run.id}" in again.reason
    )
    with pg_sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ModelVersion)) == 2


def test_kto_cycle_raises_the_held_out_margin(
    pg_sessions: sessionmaker[Session],
    train_settings: Settings,
    registry: ModelRegistry,
) -> None:
    _seed_winners_and_losers(pg_sessions)
    settings = train_settings.model_copy(
        update={"trainer": "kto", "train_steps": 4, "rm_samples": 0, "rollout_best_of": 1}
    )
    result = run_cycle(settings, pg_sessions, registry, progress=False)
    assert result.status == "succeeded", result.reason
    m = result.metrics
    assert m["kto_examples"] >= 4 and 0 < m["kto_desirable"] < m["kto_examples"]
    assert m["heldout_margin_after"] > m["heldout_margin_before"]
    with pg_sessions() as session:
        candidate = session.get_one(ModelVersion, result.candidate_version_id)
        run = _runs(session)[0]
    assert candidate.hyperparams["trainer"] == "kto" and run.trainer == "kto"
    adapter = registry.adapter_folder(candidate)
    assert adapter is not None and sorted(p.name for p in adapter.iterdir()) == sorted(
        ADAPTER_FILES
    )


@pytest.mark.parametrize("why", ["policy_off", "candidate_waiting"])
def test_without_a_new_candidate_the_serving_version_writes_ranked_variants(
    why: str,
    pg_sessions: sessionmaker[Session],
    train_settings: Settings,
    registry: ModelRegistry,
) -> None:
    """Policy training off, or a candidate still before the gate: the cycle trains nothing
    and the serving version refreshes the campaigns with its reward-ranked best."""
    cid = _seed_winners_and_losers(pg_sessions)
    settings = train_settings.model_copy(
        update={"train_policy": why != "policy_off", "rollout_best_of": 3}
    )
    waiting_id = None
    if why == "candidate_waiting":
        with pg_sessions.begin() as session:
            base = ensure_base_version(session, BASE)
            waiting_id = seed.version(session, BASE, "candidate", parent_id=base.id).id
    result = run_cycle(settings, pg_sessions, registry, progress=False)
    reason = POLICY_OFF if waiting_id is None else waiting_reason(waiting_id)
    assert result.status == "succeeded" and result.candidate_version_id is None
    assert result.reason == reason
    assert "train_seconds" not in result.metrics and "rollout_s" in result.metrics
    with pg_sessions() as session:
        versions = list(session.scalars(sa.select(ModelVersion).order_by(ModelVersion.id)))
        written = list(
            session.scalars(
                sa.select(Variant).where(
                    Variant.model_version_id == versions[0].id, Variant.reward_score.is_not(None)
                )
            )
        )
        run = _runs(session)[0]
    # no new version: the base, still active, wrote the variants, ranked by the reward model
    assert versions[0].status == "active" and versions[0].parent_id is None
    assert [v.id for v in versions[1:]] == ([] if waiting_id is None else [waiting_id])
    assert all(v.status == "candidate" for v in versions[1:])  # the waiting one, untouched
    served = [v for v in written if v.status == "active"]
    assert [v.id for v in served] == result.variant_ids and len(served) == 1
    assert all(v.campaign_id == cid for v in written) and len(written) >= 2
    assert all(v.reward_score <= served[0].reward_score for v in written)  # type: ignore[operator]
    assert run.status == "succeeded" and run.candidate_version_id is None
    assert run.reason == reason and run.reward_model_id is not None

    # the same evidence again: nothing new to learn from, so no second refresh
    again = run_cycle(settings, pg_sessions, registry, progress=False)
    assert again.status == "skipped" and again.reason is not None
    assert "no events since the last successful run" in again.reason

    # new evidence: the same version writes again, from draws of its own (the run's seed),
    # not by re-drawing the last run's samples and keeping what they had left over
    with pg_sessions.begin() as session:
        seed.arms(session, cid, [("Acme: run 5K faster, free returns", 300, 30)])
    third = run_cycle(settings, pg_sessions, registry, progress=False)
    assert third.status == "succeeded" and third.reason == reason
    assert len(third.variant_ids) == 1 and third.variant_ids != result.variant_ids
    with pg_sessions() as session:
        rewritten = list(
            session.scalars(
                sa.select(Variant).where(
                    Variant.model_version_id == versions[0].id,
                    Variant.reward_score.is_not(None),
                    Variant.id.not_in([v.id for v in written]),
                )
            )
        )

    def draws(variants: list[Variant]) -> set[int]:
        return {v.guardrail_report["generation"]["seed"] for v in variants}

    assert rewritten and not {v.text for v in rewritten} & {v.text for v in written}
    assert not draws(rewritten) & draws(written)


def test_too_little_evidence_trains_nothing_and_a_failure_is_recorded(
    pg_sessions: sessionmaker[Session],
    train_settings: Settings,
    registry: ModelRegistry,
) -> None:
    settings = train_settings.model_copy(update={"rm_samples": 0})
    with pg_sessions.begin() as session:
        cid = seed.campaign(session)
        seed.arms(session, cid, [("Acme running shoes", 0, 0)])
    result = run_cycle(settings, pg_sessions, registry, progress=False)
    assert result.status == "skipped" and result.reason is not None
    assert "no events yet" in result.reason

    grpo = settings.model_copy(update={"trainer": "grpo"})  # on-policy needs a reward model
    result = run_cycle(grpo, pg_sessions, registry, progress=False)
    assert result.status == "skipped" and result.reason is not None
    assert "grpo scores completions with the reward model" in result.reason

    with pg_sessions.begin() as session:  # evidence, but no text clearly better than another
        seed.arms(session, cid, [("Acme shoes for runners", 300, 9), ("Run in Acme", 300, 10)])
    result = run_cycle(settings, pg_sessions, registry, progress=False)
    assert result.status == "skipped" and result.reason is not None
    assert "too little evidence: 0 preference pairs" in result.reason
    assert "fewer than min_pairs=8" in result.reason

    # the active version's adapter has gone missing: the run fails, is recorded, re-raises
    _seed_winners_and_losers(pg_sessions)
    with pg_sessions.begin() as session:
        base = ensure_base_version(session, BASE)
        broken = seed.version(session, BASE, "candidate", parent_id=base.id)
        broken.adapter_path = str(settings.models_dir / "gone")
    with pg_sessions.begin() as session:
        promote(session, broken.id)
    with pytest.raises(ModelError, match="adapter_config.json"):
        run_cycle(settings, pg_sessions, registry, progress=False)
    with pg_sessions() as session:
        runs = _runs(session)
        versions = session.scalar(sa.select(sa.func.count()).select_from(ModelVersion))
    assert [r.status for r in runs] == ["skipped", "skipped", "skipped", "failed"]
    assert [r.trainer for r in runs] == ["dpo", "grpo", "dpo", "dpo"]
    assert runs[-1].error is not None and "adapter_config.json" in runs[-1].error
    assert runs[-1].finished_at is not None and runs[-1].parent_version_id == broken.id
    assert versions == 2  # nothing trained: no candidate
    assert not settings.models_dir.exists() or not any(settings.models_dir.iterdir())


def test_train_once_cli_runs_a_cycle_per_lineage_and_says_why_it_skipped(
    pg_url: str,
    pg_sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pg_sessions.begin() as session:
        cid = seed.campaign(session)
        seed.arms(session, cid, [("Acme running shoes", 0, 0)])
    monkeypatch.setenv("ADGEN_DATABASE_URL", pg_url)
    monkeypatch.setenv("ADGEN_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["train", "--once"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"training cycle: {BASE}" in result.output
    assert "skipped" in result.output and "no events yet" in result.output
    with pg_sessions() as session:
        assert [(r.status, r.base_model) for r in _runs(session)] == [("skipped", BASE)]
