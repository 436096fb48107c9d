"""Model versions: the base record, LoRA adapters loaded on ONE base model, exact switching.

The real bundled SmolLM2 is loaded once for the module; the adapters are tiny random LoRA
adapters (init_lora_weights=False) saved to a temporary folder, as training would save one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adgen.brief import Brief
from adgen.db.campaigns import create_campaign, list_variants
from adgen.db.engine import transaction
from adgen.db.models import ModelVersion
from adgen.errors import ConflictError, ModelError, NotFoundError
from adgen.generator import generate_for_campaign
from adgen.model.artifacts import ADAPTER
from adgen.model.loading import BUNDLED_NAME, load_model
from adgen.model.versions import (
    ModelRegistry,
    active_version,
    ensure_base_version,
    get_version,
    promote,
    rollback,
)
from adgen.settings import Settings
from adgen.training.config import TrainConfig
from adgen.training.policy import trainable_policy


def _random_adapters(path: Path, root: Path) -> list[Path]:
    """Two LoRA adapters with random A and B, built on a separate copy of the base; the
    second is the first with B negated."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file

    torch.manual_seed(1)
    model, _ = load_model(path)
    config = LoraConfig(
        r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    first, second = root / "a1", root / "a2"
    get_peft_model(model, config).save_pretrained(str(first))
    shutil.copytree(first, second)
    weights = second / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    save_file({k: -t if "lora_B" in k else t for k, t in tensors.items()}, str(weights))
    return [first, second]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    var = tmp_path_factory.mktemp("var")
    settings = Settings(var_dir=var, device="cpu", gen_max_new_tokens=16, gen_max_attempts=1)
    return ModelRegistry(settings)


@pytest.fixture(scope="module")
def adapters(registry: ModelRegistry, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base_path = registry.settings.cache_dir / "models" / BUNDLED_NAME
    return _random_adapters(base_path, tmp_path_factory.mktemp("adapters"))


def _next_token_logits(model: torch.nn.Module, tokenizer: object) -> torch.Tensor:
    ids = tokenizer("Trail shoes that grip wet rock:", return_tensors="pt")  # type: ignore[operator]
    with torch.inference_mode():
        return model(**ids).logits[0, -1].clone()


def _candidate(session: Session, base: ModelVersion, adapter: Path) -> ModelVersion:
    version = ModelVersion(
        base_model=base.base_model, adapter_path=str(adapter), parent_id=base.id, status="candidate"
    )
    session.add(version)
    session.flush()
    return version


def test_base_version_record_created_once_and_active(
    registry: ModelRegistry, pg_sessions: sessionmaker[Session]
) -> None:
    name = registry.base_name_for_locale("en")
    assert name == BUNDLED_NAME
    with transaction(pg_sessions) as session:
        first = ensure_base_version(session, name)
        again = ensure_base_version(session, name)
        assert first.id == again.id == 1
        assert (first.status, first.adapter_path, first.parent_id) == ("active", None, None)
        assert active_version(session, name).id == first.id
    with transaction(pg_sessions) as session:
        rows = session.scalars(select(ModelVersion)).all()
        assert [(r.id, r.base_model, r.status) for r in rows] == [(1, name, "active")]


def test_no_active_version_is_a_clear_conflict(
    registry: ModelRegistry, pg_sessions: sessionmaker[Session]
) -> None:
    with transaction(pg_sessions) as session:
        base = ensure_base_version(session, BUNDLED_NAME)
        base.status = "retired"
        session.flush()
        with pytest.raises(ConflictError, match="no version of smollm2-135m-instruct is active"):
            active_version(session, BUNDLED_NAME)
        with pytest.raises(NotFoundError, match="model version 999 does not exist"):
            get_version(session, 999)


def test_adapters_switch_on_one_base_exactly(
    registry: ModelRegistry, adapters: list[Path], pg_sessions: sessionmaker[Session]
) -> None:
    with transaction(pg_sessions) as session:
        base_v = ensure_base_version(session, BUNDLED_NAME)
        v2 = _candidate(session, base_v, adapters[0])
        v3 = _candidate(session, base_v, adapters[1])
    base_loaded = registry.load(base_v)
    base_model = base_loaded.base.model
    weight = base_model.get_input_embeddings().weight
    ptr = weight.data_ptr()
    q_proj = base_model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    with base_loaded.activated() as model:
        before = _next_token_logits(model, base_loaded.tokenizer)

    one, two = registry.load(v2), registry.load(v3)
    assert (one.adapter_name, two.adapter_name) == (f"v{v2.id}", f"v{v3.id}")
    assert registry.load(v2).adapter_name == one.adapter_name  # loaded once, reused
    with one.activated() as model:
        assert model.get_base_model() is base_model
        logits_one = _next_token_logits(model, one.tokenizer)
    with two.activated() as model:
        logits_two = _next_token_logits(model, two.tokenizer)
    with base_loaded.activated() as model:
        after = _next_token_logits(model, base_loaded.tokenizer)
    with one.activated() as model:
        again_one = _next_token_logits(model, one.tokenizer)

    # Each adapter changes the next-token distribution, differently.
    p0, p1 = torch.softmax(before, -1), torch.softmax(logits_one, -1)
    assert torch.sum(p0 * (p0.log() - p1.log())).item() > 1e-3  # KL(base || v2)
    assert not torch.allclose(logits_one, logits_two)
    # Switching back restores the base and the adapter exactly.
    assert torch.equal(after, before)
    assert torch.equal(again_one, logits_one)
    # The base weights were neither reloaded nor merged into.
    assert registry.bases.serving(BUNDLED_NAME).model is base_model
    assert base_model.get_input_embeddings().weight.data_ptr() == ptr
    q_now = base_model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert torch.equal(q_now, q_proj)


def test_training_takes_its_own_copy_and_leaves_serving_adapters_alone(
    registry: ModelRegistry, adapters: list[Path], pg_sessions: sessionmaker[Session]
) -> None:
    """A cycle wraps the training copy in LoRA and strips it again: the serving copy, with
    its versions' adapters, must come out exactly as it was."""
    with transaction(pg_sessions) as session:
        v2 = _candidate(session, ensure_base_version(session, BUNDLED_NAME), adapters[0])
    serving = registry.load(v2)
    with serving.activated() as model:
        before = _next_token_logits(model, serving.tokenizer)

    train_model, tokenizer = registry.bases.training(BUNDLED_NAME)
    assert registry.bases.training(BUNDLED_NAME)[0] is train_model  # loaded once
    assert train_model is not serving.base.model
    assert next(train_model.parameters()).dtype == torch.float32
    config = TrainConfig.from_settings(registry.settings)
    with trainable_policy(train_model, adapters[1], config) as policy:
        assert any(p.requires_grad for p in policy.parameters())
    assert not any("lora" in name for name, _ in train_model.named_modules())

    with serving.activated() as model:
        after = _next_token_logits(model, serving.tokenizer)
    assert torch.equal(after, before)


def test_a_version_writes_variants_recorded_with_its_id(
    registry: ModelRegistry, adapters: list[Path], pg_sessions: sessionmaker[Session]
) -> None:
    brief = Brief(
        name="shoes", product="trail running shoes", brand="Stride", audience="trail runners"
    )
    with transaction(pg_sessions) as session:
        base_v = ensure_base_version(session, BUNDLED_NAME)
        version = _candidate(session, base_v, adapters[0])
        campaign = create_campaign(session, brief)
        result = generate_for_campaign(
            session, registry, campaign, 2, version=version.id, rng_seed=3
        )
        assert result.model_version_id == version.id
    with transaction(pg_sessions) as session:
        rows = list_variants(session, campaign.id)
        assert rows, "the candidates were neither accepted nor stored as rejected"
        assert {v.model_version_id for v, _ in rows} == {version.id}
        assert sorted(v.id for v, _ in rows if v.status == "active") == result.variant_ids


def test_missing_adapter_folder_is_a_model_error(
    registry: ModelRegistry, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with transaction(pg_sessions) as session:
        base_v = ensure_base_version(session, BUNDLED_NAME)
        version = _candidate(session, base_v, tmp_path / "nowhere")
    with pytest.raises(ModelError, match="has no adapter_config.json"):
        registry.load(version)


def test_rollback_serves_the_parent_on_a_host_that_never_saw_its_files(
    registry: ModelRegistry,
    adapters: list[Path],
    pg_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    """Adapters live in the database: host B (an empty var dir) serves what host A stored."""
    with transaction(pg_sessions) as session:
        base_v = ensure_base_version(session, BUNDLED_NAME)
        digest = registry.store_for(session).put(adapters[0], ADAPTER, session)
        parent = ModelVersion(
            base_model=BUNDLED_NAME, adapter_sha256=digest, parent_id=base_v.id, status="candidate"
        )
        session.add(parent)
        session.flush()
        promote(session, parent.id)
        child = _candidate(session, parent, adapters[1])
        promote(session, child.id)
    with transaction(pg_sessions) as session:
        rollback(session, child.id)
    with pg_sessions() as session:
        here = registry.load(get_version(session, parent.id))
    with here.activated() as model:
        expected = _next_token_logits(model, here.tokenizer)

    host_b = ModelRegistry(Settings(var_dir=tmp_path / "host-b", device="cpu"))
    with pg_sessions() as session:
        active = active_version(session, BUNDLED_NAME)
        assert active.id == parent.id and active.adapter_sha256 == digest
        folder = host_b.adapter_folder(active)
        there = host_b.load(active)
    assert folder is not None and folder.is_relative_to(tmp_path / "host-b")
    with there.activated() as model:
        assert torch.equal(_next_token_logits(model, there.tokenizer), expected)
