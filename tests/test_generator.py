"""The generator: cleaning and filters (pure), then the REAL bundled SmolLM2 writing variants
for an English and a Chinese brief, stored through PostgreSQL, the CLI and the HTTP API.

The bundled 135M model writes weak English and poor Chinese, so these tests do not judge
quality: they check that whatever was stored as active passes every guardrail, that
rejections were counted and stored as ``rejected``, and that sampling is reproducible.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures import STRIDE, WATCH  # bench/_fixtures.py
from api_support import ADMIN
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from adgen.api import create_app
from adgen.brief import Brief
from adgen.cli.main import app as cli_app
from adgen.db.campaigns import brief_of, create_campaign, list_variants
from adgen.db.engine import transaction
from adgen.errors import NotFoundError
from adgen.generator import GenerationResult, LoopConfig, SamplingParams, sample_texts
from adgen.generator.campaign import default_seed, generate_for_campaign
from adgen.generator.candidates import attempt_seed
from adgen.generator.cleaning import candidate_text, clean, fit_sentences, settled
from adgen.generator.filters import generation_reasons
from adgen.generator.prompts import build_prompt
from adgen.generator.sampling import prompt_cache, sample_raw
from adgen.guardrails import GuardrailConfig, builtin_terms, check
from adgen.guardrails.text import cjk_share
from adgen.model.loading import BUNDLED_NAME
from adgen.model.versions import ModelRegistry, ensure_base_version
from adgen.settings import Settings

EN = STRIDE.model_copy(
    update={"forbidden_words": ["the"]}  # most English sentences use it: rejections are certain
)
ZH = WATCH
CONFIG = GuardrailConfig(compliance=builtin_terms())


# --- cleaning, filters, prompts (pure) ---------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "finished", "expected"),
    [
        ('"Grip every rock with Stride"', True, "Grip every rock with Stride"),
        ('"Ad: Trailrunner X2 Essentials"', True, "Trailrunner X2 Essentials"),
        ("Headline: Grip every rock with Stride", True, "Grip every rock with Stride"),
        ("1. **Grip every rock** with Stride\n2. Run light", True, "Grip every rock with Stride"),
        ("Sure! Stride X2: run wild.", True, "Stride X2: run wild."),
        ("Here's a headline for you:\n\n“Run wild on wet rock”\n", True, "Run wild on wet rock"),
        ("Stride shoes. Run wild on wet rocks an", False, "Stride shoes. Run wild on wet rocks"),
        ("Stride grips wet rock. Trails feel light and", False, "Stride grips wet rock."),
        ("标题：「华为手表，陪你跑更远」", True, "华为手表，陪你跑更远"),
        ("智能手表，防水，超长待机。白莱的\ufffd", False, "智能手表，防水，超长待机。"),
        ("Trail joy 🏃 with Stride #trailrun", True, "Trail joy 🏃 with Stride #trailrun"),
        ("Product: Trailrunner X2 shoes", True, "Trailrunner X2 shoes"),
        ("\n\n   \n", True, ""),
        ("Here's a possible headline:", False, ""),
    ],
)
def test_clean(raw: str, finished: bool, expected: str) -> None:
    assert clean(raw, finished) == expected


def test_fit_sentences_keeps_whole_leading_sentences_within_the_limit() -> None:
    text = "Stride grips wet rock. Order now for weekend trail adventures with free shipping."
    assert fit_sentences(text, 60, "chars") == "Stride grips wet rock."
    assert fit_sentences(text, 200, "chars") == text
    no_end = "No sentence end in this long line at all"
    assert fit_sentences(no_end, 10, "chars") == no_end  # the guardrail rejects it as too long
    zh = "智能手表，防水。超长待机，陪你跑得更远更久！"
    assert fit_sentences(zh, 10, "chars") == "智能手表，防水。"


def test_a_row_is_settled_once_more_tokens_cannot_change_its_candidate() -> None:
    brief = EN.model_copy(update={"max_length": 30, "length_unit": "chars"})
    assert not settled("", brief) and not settled("Headline:", brief)
    assert not settled("Grip every rock", brief), "the line may go on"
    assert not settled("Grip every rock\n", brief), "a blank line may still end the text"
    assert settled("Grip every rock\nBrand: Stride", brief), "the picked line is complete"
    assert not settled("Headline:\nGrip every", brief), "a label line is not the candidate"
    # over the limit even cut at a word: only sentences already written can fit
    assert settled("Grip every rock. Order now for weekend trail", brief)
    assert not settled("Grip every rock. Order now for", brief), "a cut fragment still fits"
    words = EN.model_copy(update={"max_length": 4, "length_unit": "words"})
    assert not settled("Grip every rock with", words) and settled("Grip every rock with a b", words)
    assert not settled("long " * 300, EN.model_copy(update={"max_length": None})), "no limit"


def test_generation_filters() -> None:
    # a copy of our instructions is the guardrail instruction_leak's, not prompt_echo's
    instructions = "No quotes, no labels, no explanations."
    assert generation_reasons(instructions, EN) == ["off_brief"]
    assert check(instructions, EN, [], CONFIG).reasons == ["instruction_leak"]
    assert generation_reasons("Please provide your next ad request.", EN) == ["off_brief"]
    assert generation_reasons("Trailrunner X2 waterproof running shoes", EN) == ["prompt_echo"]
    assert generation_reasons("grips on wet rock", EN) == ["prompt_echo"]
    assert generation_reasons("Lace up for wet trails this weekend", EN) == []
    assert generation_reasons("并发嘉家将公三杯美华", ZH) == ["off_brief"]
    assert generation_reasons("陪你运动的华为手表", ZH) == []


def test_prompt_carries_the_brief_and_our_system_prompt() -> None:
    words = Brief(**{**EN.model_dump(), "max_length": 8, "length_unit": "words"})
    en, zh = build_prompt(words), build_prompt(ZH.model_copy(update={"require_brand": True}))
    assert en.messages()[0] == {"role": "system", "content": en.system}
    for part in ("Trailrunner X2", "lightweight; grips on wet rock", "Stride (voice: energetic",
                 "weekend trail runners", "at most 8 words"):
        assert part in en.user
    assert "只用中文" in zh.system
    for part in ("智能手表", "防水；超长待机", "华为（语气：亲切、专业）", "不超过30个字"):
        assert part in zh.user
    assert "“华为”" in zh.user  # require_brand asks for the brand


def test_loop_and_sampling_config_validation() -> None:
    loop = LoopConfig(max_attempts=2, oversample=2.0, max_batch=10)
    assert [loop.batch_size(m) for m in (1, 3, 8)] == [2, 6, 10]
    with pytest.raises(ValueError, match="oversample=0.5"):
        LoopConfig(oversample=0.5)
    with pytest.raises(ValueError, match="max_attempts=0"):
        LoopConfig(max_attempts=0)
    with pytest.raises(ValueError, match="top_p=1.5"):
        SamplingParams(top_p=1.5)
    with pytest.raises(ValueError, match="temperature=0"):
        SamplingParams(temperature=0)


def test_seeds_are_derived_not_shifted() -> None:
    assert attempt_seed(0, 1) != attempt_seed(1, 0)
    assert attempt_seed(5, 2) == attempt_seed(5, 2)
    assert default_seed(0, 7, 0) != default_seed(0, 7, 8)  # a second run samples anew


# --- the real bundled model ---------------------------------------------------------------
@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("var"),
        device="cpu",
        base_model_zh=BUNDLED_NAME,  # the test must not depend on the optional zh model
        gen_max_new_tokens=32,
        gen_max_attempts=3,
    )
    return ModelRegistry(settings)


def test_chat_template_gets_our_system_prompt(registry: ModelRegistry) -> None:
    tokenizer = registry.bases.serving(BUNDLED_NAME).tokenizer
    prompt = build_prompt(EN)
    rendered = tokenizer.apply_chat_template(prompt.messages(), tokenize=False)
    assert prompt.system in rendered and "SmolLM" not in rendered


def test_sampling_is_reproducible_and_leaves_the_global_rng_alone(registry: ModelRegistry) -> None:
    base = registry.bases.serving(BUNDLED_NAME)
    params = SamplingParams(max_new_tokens=12)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = sample_texts(base.model, base.tokenizer, EN, 3, seed=11, params=params)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert sample_texts(base.model, base.tokenizer, EN, 3, seed=11, params=params) == first
    assert sample_texts(base.model, base.tokenizer, EN, 3, seed=12, params=params) != first


def test_the_prompt_is_computed_once_and_its_cache_copied_to_every_row(
    registry: ModelRegistry,
) -> None:
    base = registry.bases.serving(BUNDLED_NAME)
    inputs = base.tokenizer.apply_chat_template(
        build_prompt(EN).messages(), add_generation_prompt=True, return_tensors="pt",
        return_dict=True,
    )
    length = inputs["input_ids"].shape[1]
    with torch.inference_mode():
        cache = prompt_cache(base.model, inputs["input_ids"], 5)
        one = prompt_cache(base.model, inputs["input_ids"], 1)
    assert cache.get_seq_length() == length - 1, "the last prompt token starts the sampling"
    keys = cache.layers[0].keys
    assert keys.shape[0] == 5 and all(torch.equal(keys[i], keys[0]) for i in range(5))
    assert torch.allclose(keys[0], one.layers[0].keys[0])
    with pytest.raises(ValueError, match="one prompt"):
        prompt_cache(base.model, inputs["input_ids"].repeat(2, 1), 3)


def test_rows_stop_once_settled_and_the_others_are_unchanged(registry: ModelRegistry) -> None:
    base = registry.bases.serving(BUNDLED_NAME)
    brief, prompt, params = STRIDE, build_prompt(STRIDE), SamplingParams(max_new_tokens=40)
    full = sample_raw(base.model, base.tokenizer, prompt, 8, 5, params)
    seen: list[str] = []

    def stop_when(text: str) -> bool:
        seen.append(text)
        return settled(text, brief)

    early = sample_raw(base.model, base.tokenizer, prompt, 8, 5, params, stop_when)
    assert seen, "the rule was asked after each token"
    stopped = [i for i, ((a, _), (b, _)) in enumerate(zip(full, early, strict=True)) if a != b]
    assert stopped, "SmolLM2 runs past its copy in some of 8 rows"
    for i, ((text, ended), (cut, cut_ended)) in enumerate(zip(full, early, strict=True)):
        if i not in stopped:  # or stopped at the token before its end
            assert cut_ended == ended or settled(cut, brief)
            continue
        assert text.startswith(cut) and settled(cut, brief) and not cut_ended
        got, want = candidate_text(cut, False, brief), candidate_text(text, ended, brief)
        # the same candidate, or one too long to serve either way
        assert got == want or min(len(got), len(want)) > (brief.max_length or 0), (got, want)


def _assert_stored_honestly(
    session: Session, registry: ModelRegistry, campaign_id: int, result: GenerationResult
) -> list[str]:
    """Every active variant passes every guardrail and filter; rejected ones are stored as
    ``rejected`` with their reasons. Returns the active texts."""
    rows = [v for v, _ in list_variants(session, campaign_id)]
    active = [v for v in rows if v.status == "active"]
    brief = brief_of(active[0].campaign) if active else None
    assert sorted(v.id for v in active) == sorted(result.variant_ids)
    assert len(active) == len(result.accepted) >= 1
    base_version = ensure_base_version(session, BUNDLED_NAME)
    for v in active:
        others = [o.text for o in active if o.id != v.id]
        assert brief is not None
        report = check(v.text, brief, others, registry.guardrails)
        assert report.passed, (v.text, report.reasons)
        assert generation_reasons(v.text, brief) == []
        assert v.guardrail_report["passed"] is True and v.guardrail_report["reasons"] == []
        assert (v.model_version_id, v.source) == (base_version.id, "generated")
    rejected = [v for v in rows if v.status == "rejected"]
    assert len(rejected) == len([c for c in result.rejected if c.text])
    for v in rejected:
        assert v.guardrail_report["passed"] is False and v.guardrail_report["reasons"]
    assert result.candidates == len(result.accepted) + len(result.rejected)
    assert sum(result.rejections.values()) >= len(result.rejected) >= 1
    return [v.text for v in active]


def test_english_brief(registry: ModelRegistry, pg_sessions: sessionmaker[Session]) -> None:
    with transaction(pg_sessions) as session:
        campaign = create_campaign(session, EN)
        result = generate_for_campaign(session, registry, campaign, 4, rng_seed=1)
    with transaction(pg_sessions) as session:
        texts = _assert_stored_honestly(session, registry, campaign.id, result)
    assert all(" the " not in f" {t.lower()} " for t in texts)
    assert result.rejections.get("forbidden_word", 0) >= 1
    print("\nen accepted:", texts, "\nrejections:", result.rejections)


def test_chinese_brief(registry: ModelRegistry, pg_sessions: sessionmaker[Session]) -> None:
    with transaction(pg_sessions) as session:
        campaign = create_campaign(session, ZH)
        result = generate_for_campaign(session, registry, campaign, 3, rng_seed=1)
    with transaction(pg_sessions) as session:
        texts = _assert_stored_honestly(session, registry, campaign.id, result)
    assert all(cjk_share(t) >= registry.guardrails.min_cjk_share_zh for t in texts)
    print("\nzh accepted:", texts, "\nrejections:", result.rejections)


# --- the HTTP API and the CLI ------------------------------------------------------------
@pytest.fixture
def client(settings: Settings, registry: ModelRegistry) -> Iterator[TestClient]:
    app = create_app(settings, rng=np.random.default_rng(1))
    app.state.model_registry = registry  # the model is loaded once for this module
    with TestClient(app) as c:
        yield c


def test_http_generate(client: TestClient, pg_sessions: sessionmaker[Session]) -> None:
    with transaction(pg_sessions) as session:
        cid = create_campaign(session, EN.model_copy(update={"forbidden_words": []})).id
    url = f"/v1/campaigns/{cid}/variants:generate"
    assert client.post(url, json={"n": 1}).status_code == 401
    missing = client.post("/v1/campaigns/999/variants:generate", json={}, headers=ADMIN)
    assert missing.status_code == 404 and "campaign 999" in missing.json()["detail"]
    bad = client.post(url, json={"n": 0}, headers=ADMIN)
    assert bad.status_code == 422 and "n" in bad.json()["detail"]
    unknown_version = client.post(url, json={"n": 1, "version": 77}, headers=ADMIN)
    assert unknown_version.status_code == 404
    with transaction(pg_sessions) as session:
        assert list_variants(session, cid) == []  # nothing stored by the refused requests

    r = client.post(url, json={"n": 2, "seed": 5}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["seed"] == 5 and body["candidates"] == len(body["variants"]) + body["rejected"]
    assert sum(body["rejections"].values()) >= body["rejected"]
    with transaction(pg_sessions) as session:
        active = {v.id: v.text for v, _ in list_variants(session, cid, ["active"])}
    assert active == {v["id"]: v["text"] for v in body["variants"]}
    assert all(v["guardrail_report"]["passed"] for v in body["variants"])


def test_cli_generate(pg_url: str, pg_sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with transaction(pg_sessions) as session:
        cid = create_campaign(session, EN.model_copy(update={"forbidden_words": []})).id
    env = {
        **os.environ,
        "ADGEN_DATABASE_URL": pg_url,
        "ADGEN_VAR_DIR": str(tmp_path),
        "ADGEN_DEVICE": "cpu",
        "ADGEN_GEN_MAX_NEW_TOKENS": "32",
        "ADGEN_GEN_MAX_ATTEMPTS": "4",  # seed 3's first two attempts all fail a guardrail
        "COLUMNS": "160",
    }
    cli = [sys.executable, "-m", "adgen.cli.main", "generate"]
    done = subprocess.run([*cli, str(cid), "--n", "1", "--seed", "3"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"campaign {cid}:" in done.stdout and "candidates rejected" in done.stdout
    with transaction(pg_sessions) as session:
        rows = list_variants(session, cid, ["active"])
    assert rows and all(v.text in done.stdout for v, _ in rows)


def test_cli_unknown_campaign_is_a_clear_error(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adgen.settings import get_settings

    monkeypatch.setenv("ADGEN_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["generate", "424242"])
    finally:
        get_settings.cache_clear()
    assert isinstance(result.exception, NotFoundError)
    assert "campaign 424242 does not exist" in str(result.exception)
