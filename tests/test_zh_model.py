"""The Chinese base model in the loop: its own lineage beside the English one.

Uses the real installed Qwen2.5-Coder-0.5B-Instruct (``make install-zh``) and the real
bundled SmolLM2, the real PostgreSQL and a real (short) DPO cycle. CI installs the Chinese
model before the tests; when it is missing these tests fail and say how to install it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import seed_evidence
import torch
from _fixtures import HUAWEI, HUAWEI_LOSERS, HUAWEI_WINNERS  # bench/_fixtures.py
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adgen.brief import Brief
from adgen.db.campaigns import create_campaign, list_variants
from adgen.db.engine import transaction
from adgen.db.models import ModelVersion, Variant
from adgen.errors import ConflictError
from adgen.generator import generate_for_campaign
from adgen.guardrails import check
from adgen.guardrails.text import cjk_share
from adgen.model.loading import BUNDLED_NAME, ZH_INSTALL_COMMAND, ZH_MODEL_NAME
from adgen.model.locales import zh_model_installed
from adgen.model.versions import ModelRegistry, active_version, ensure_base_version
from adgen.settings import Settings
from adgen.vocabulary import Decider

ZH_BRIEF = HUAWEI
EN_BRIEF = Brief(
    name="shoes", product="trail running shoes", brand="Stride", audience="trail runners"
)
#: Chinese headlines with a number or a call to action (they win) and flat ones (they lose).
ZH_WINNERS = HUAWEI_WINNERS[:6]
ZH_LOSERS = HUAWEI_LOSERS[:6]


def _require_zh(settings: Settings) -> None:
    if not zh_model_installed(settings):
        pytest.fail(f"the Chinese model is not installed: run {ZH_INSTALL_COMMAND}")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """One registry for the module, so each base model loads once."""
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("var"),
        device="cpu",
        gen_max_new_tokens=32,
        gen_oversample=1.5,
        min_pairs=4,
        rm_samples=0,
        rollout_variants=2,
        rollout_best_of=2,
        train_steps=2,
        train_batch_size=2,
        max_length=96,
        heldout_share=0.0,
    )
    _require_zh(settings)
    return ModelRegistry(settings)


@pytest.fixture
def sessions(pg_sessions: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    yield pg_sessions


def test_a_chinese_brief_gets_chinese_variants_from_qwen_and_english_keeps_smollm(
    registry: ModelRegistry, sessions: sessionmaker[Session]
) -> None:
    assert registry.base_name_for_locale("zh") == ZH_MODEL_NAME
    assert registry.base_name_for_locale("en") == BUNDLED_NAME
    with transaction(sessions) as session:
        zh = create_campaign(session, ZH_BRIEF)
        en = create_campaign(session, EN_BRIEF)
        zh_result = generate_for_campaign(session, registry, zh, 4, rng_seed=11)
        en_result = generate_for_campaign(session, registry, en, 2, rng_seed=11)
        zh_version = session.get_one(ModelVersion, zh_result.model_version_id)
        en_version = session.get_one(ModelVersion, en_result.model_version_id)
        assert zh_version.base_model == ZH_MODEL_NAME
        assert en_version.base_model == BUNDLED_NAME
        # a version of one lineage never writes for the other locale
        with pytest.raises(ConflictError, match="belongs to the lineage of"):
            generate_for_campaign(session, registry, zh, 1, version=en_version)

    texts = [c.text for c in zh_result.accepted]
    assert len(texts) == 4, zh_result.rejections
    # the model itself writes Chinese: every candidate, rejected ones included
    everything = texts + [c.text for c in zh_result.rejected if c.text]
    assert min(cjk_share(t) for t in texts) >= 0.8, texts
    assert sum(cjk_share(t) for t in everything) / len(everything) >= 0.8, everything
    for i, text in enumerate(texts):
        report = check(text, ZH_BRIEF, texts[:i], registry.guardrails)
        assert report.passed, (text, report.reasons)
    with transaction(sessions) as session:
        stored = list_variants(session, zh.id, ["active"])
        assert sorted(v.text for v, _ in stored) == sorted(texts)

    # both bases are held at once, each in its own dtype
    qwen, smol = (
        registry.bases.serving(ZH_MODEL_NAME).model,
        registry.bases.serving(BUNDLED_NAME).model,
    )
    assert qwen is not smol
    assert next(qwen.parameters()).dtype == torch.bfloat16
    assert next(smol.parameters()).dtype == torch.float32


def _lineage_snapshot(session: Session, base: str) -> list[tuple[object, ...]]:
    versions = session.execute(
        select(ModelVersion.id, ModelVersion.status, ModelVersion.adapter_sha256)
        .where(ModelVersion.base_model == base)
        .order_by(ModelVersion.id)
    ).all()
    variants = session.execute(
        select(Variant.id, Variant.status, Variant.model_version_id)
        .join(ModelVersion, ModelVersion.id == Variant.model_version_id)
        .where(ModelVersion.base_model == base)
        .order_by(Variant.id)
    ).all()
    return [*map(tuple, versions), *map(tuple, variants)]


def test_training_the_chinese_lineage_leaves_the_english_one_untouched(
    registry: ModelRegistry, sessions: sessionmaker[Session]
) -> None:
    from adgen.model.versions import rollback
    from adgen.training.cycle import run_cycle

    with transaction(sessions) as session:
        en_base = ensure_base_version(session, BUNDLED_NAME)
        zh_base = ensure_base_version(session, ZH_MODEL_NAME)
        en_id = seed_evidence.campaign(session)
        seed_evidence.arms(
            session,
            en_id,
            [(t, 300, 45) for t in seed_evidence.WINNERS[:4]]
            + [(t, 300, 3) for t in seed_evidence.LOSERS[:4]],
            version_id=en_base.id,
        )
        zh_id = create_campaign(session, ZH_BRIEF).id
        seed_evidence.arms(
            session,
            zh_id,
            [(t, 300, 45) for t in ZH_WINNERS] + [(t, 300, 3) for t in ZH_LOSERS],
            version_id=zh_base.id,
        )
        english_before = _lineage_snapshot(session, BUNDLED_NAME)

    result = run_cycle(
        registry.settings, sessions, registry, base_name=ZH_MODEL_NAME, progress=False
    )
    assert result.status == "succeeded", result.reason
    assert result.base_model == ZH_MODEL_NAME

    with transaction(sessions) as session:
        candidate = session.get_one(ModelVersion, result.candidate_version_id)
        assert candidate.status == "candidate" and candidate.base_model == ZH_MODEL_NAME
        assert candidate.parent_id == zh_base.id
        assert session.get_one(ModelVersion, candidate.parent_id).base_model == ZH_MODEL_NAME
        adapter = registry.adapter_folder(candidate)
        assert adapter is not None and (adapter / "adapter_model.safetensors").is_file()
        written = session.scalars(select(Variant).where(Variant.id.in_(result.variant_ids))).all()
        assert written and {v.campaign_id for v in written} == {zh_id}
        assert all(cjk_share(v.text) >= 0.8 for v in written), [v.text for v in written]
        assert _lineage_snapshot(session, BUNDLED_NAME) == english_before

    with transaction(sessions) as session:
        rollback(session, candidate.id, by=Decider.OPERATOR)
    with transaction(sessions) as session:
        assert session.get_one(ModelVersion, candidate.id).status == "rolled_back"
        assert active_version(session, ZH_MODEL_NAME).id == zh_base.id
        paused = session.scalars(select(Variant.status).where(Variant.id.in_(result.variant_ids)))
        assert set(paused) == {"paused"}
        assert _lineage_snapshot(session, BUNDLED_NAME) == english_before
        assert active_version(session, BUNDLED_NAME).id == en_base.id
