"""Guardrails (pure): each one with texts it must reject and texts it must keep, en and zh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fixtures import STRIDE, WATCH  # bench/_fixtures.py

from adgen.brief import Brief
from adgen.errors import ConfigError
from adgen.guardrails import (
    REASONS,
    ComplianceTerms,
    GuardrailConfig,
    batch_metrics,
    builtin_terms,
    check,
    config_from_settings,
    similarity,
)
from adgen.settings import Settings

CONFIG = GuardrailConfig(compliance=builtin_terms())

EN = STRIDE.model_copy(update={"forbidden_words": ["cheap", "knock-off"]})
EN_BRAND = EN.model_copy(update={"require_brand": True})
EN_WORDS = Brief(
    name="w", product="shoes", brand="Stride", audience="runners", max_length=5, length_unit="words"
)
ZH = WATCH.model_copy(update={"forbidden_words": ["便宜货"]})
ZH_BRAND = ZH.model_copy(update={"require_brand": True})


def reasons(text: str, brief: Brief, existing: list[str] | None = None) -> list[str]:
    return check(text, brief, existing or [], CONFIG).reasons


def test_every_reason_code_is_distinct() -> None:
    assert sorted(REASONS) == sorted(set(REASONS))
    assert set(REASONS) == {
        "empty", "too_short", "too_long", "brand_missing", "forbidden_word",
        "absolute_claim", "wrong_language", "malformed", "near_duplicate", "invented_name",
        "instruction_leak",
    }


# --- length ------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text_reports_only_empty(text: str) -> None:
    report = check(text, EN_BRAND, ["x"], CONFIG)
    assert report.reasons == ["empty"] and not report.passed


@pytest.mark.parametrize(("text", "brief"), [("Go!", EN), ("Hi 5", EN), ("华为", ZH), ("好!", ZH)])
def test_too_short(text: str, brief: Brief) -> None:
    assert "too_short" in reasons(text, brief)


def test_length_limit_counts_characters_for_en_headline() -> None:
    assert EN.max_length == 60 and EN.length_unit == "chars"
    keep = "Stride shoes grip wet rock " + "x" * 33  # exactly 60 characters
    assert len(keep) == 60 and "too_long" not in reasons(keep, EN)
    report = check(keep + "y", EN, [], CONFIG)
    assert report.reasons == ["too_long"]
    assert report.details["too_long"] == {"length": 61, "max": 60, "unit": "chars"}


def test_length_limit_counts_words_when_the_brief_says_words() -> None:
    assert reasons("Stride shoes run far today", EN_WORDS) == []  # 5 words, 26 characters
    assert reasons("Stride shoes run far and fast", EN_WORDS) == ["too_long"]


def test_length_limit_counts_characters_for_zh() -> None:
    assert ZH.max_length == 30
    keep = "华为智能手表，防水又超长待机，" * 2  # 30 characters
    assert len(keep) == 30 and "too_long" not in reasons(keep, ZH, [])
    assert "too_long" in reasons(keep + "好", ZH)


def test_full_width_text_is_counted_after_normalisation() -> None:
    # Ｓｔｒｉｄｅ (full-width) is 6 characters either way; NFKC must not change the count.
    report = check("Ｓｔｒｉｄｅ shoes", EN_BRAND, [], CONFIG)
    assert report.length == 12 and report.passed  # and the brand is recognised


# --- brand and forbidden words -----------------------------------------------------------
@pytest.mark.parametrize("text", ["Run wet rock trails with confidence", "Strider trail shoes"])
def test_brand_required_and_missing(text: str) -> None:
    assert "brand_missing" in reasons(text, EN_BRAND)


@pytest.mark.parametrize("text", ["STRIDE: trail shoes that grip", "Trail shoes by stride."])
def test_brand_required_and_present_any_case(text: str) -> None:
    assert "brand_missing" not in reasons(text, EN_BRAND)


def test_brand_not_required_is_not_checked() -> None:
    assert reasons("Trail shoes that grip wet rock", EN) == []


def test_brand_zh() -> None:
    assert "brand_missing" in reasons("智能手表，防水超长待机", ZH_BRAND)
    assert "brand_missing" not in reasons("华为智能手表，防水超长待机", ZH_BRAND)


@pytest.mark.parametrize("text", ["Cheap trail shoes by Stride", "Not a KNOCK-OFF: Stride shoes"])
def test_forbidden_words_rejected(text: str) -> None:
    report = check(text, EN, [], CONFIG)
    assert "forbidden_word" in report.reasons
    assert report.details["forbidden_word"]


@pytest.mark.parametrize("text", ["Cheapest? No. Stride shoes", "Stride: cheapskates welcome"])
def test_forbidden_words_match_whole_words_only(text: str) -> None:
    assert "forbidden_word" not in reasons(text, EN)


def test_forbidden_words_zh() -> None:
    assert "forbidden_word" in reasons("华为手表不是便宜货", ZH)
    assert "forbidden_word" not in reasons("华为手表，物超所值", ZH)


# --- compliance --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("The best trail shoes", "best"),
        ("Best-selling trail shoes", "best"),
        ("Stride, the #1 trail shoe", "#1"),
        ("The Number  One shoe for trails", "number one"),
        ("Guaranteed grip on wet rock", "guaranteed"),
        ("Risk-free returns on trail shoes", "risk-free"),
        ("Cures sore feet on the trail", "cures"),
        ("A miracle on wet rock", "miracle"),
        ("100% grip on wet rock", "100%"),
        ("Stride: No.1 for trail runners", "no.1"),
    ],
)
def test_absolute_claims_en_rejected(text: str, term: str) -> None:
    report = check(text, EN, [], CONFIG)
    assert "absolute_claim" in report.reasons
    assert term in report.details["absolute_claim"]


@pytest.mark.parametrize(
    "text",
    [
        "Trail shoes that bestow confidence",
        "Join 10,000 runners on #10 trail",
        "Grip wet rock, run further",
        "Secure your footing on every trail",
        "Our 10% launch discount on trail shoes",
    ],
)
def test_absolute_claims_en_kept(text: str) -> None:
    assert "absolute_claim" not in reasons(text, EN)


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("华为智能手表，最好的选择", "最"),
        ("全网最低价，华为手表", "最"),
        ("最新款华为手表", "最"),  # 'newest' is a superlative claim: not allowed
        ("华为手表，销量第一", "第一"),
        ("国家级品质的智能手表", "国家级"),
        ("顶级防水智能手表", "顶级"),
        ("极品智能手表", "极品"),
        ("运动达人的首选手表", "首选"),
        ("唯一超长待机的手表", "唯一"),
        ("绝对防水的智能手表", "绝对"),
        ("１００％防水的智能手表", "100%"),  # full-width digits and percent sign
        ("万能智能手表", "万能"),
        ("华为手表NO.1", "no.1"),
    ],
)
def test_absolute_claims_zh_rejected(text: str, term: str) -> None:
    report = check(text, ZH, [], CONFIG)
    assert "absolute_claim" in report.reasons
    assert term in report.details["absolute_claim"]


@pytest.mark.parametrize(
    "text",
    [
        "最近很火的华为智能手表",  # 最近 'recently' is not a superlative
        "跑到最后，电量依然充足",  # 最后 'in the end'
        "第一次跑马拉松就戴华为",  # 第一次 'the first time' is an ordinal, not a ranking
        "防水又长续航的智能手表",
    ],
)
def test_absolute_claims_zh_kept(text: str) -> None:
    assert "absolute_claim" not in reasons(text, ZH)


def test_allowed_word_does_not_hide_a_real_superlative_next_to_it() -> None:
    assert "absolute_claim" in reasons("最近最火的华为手表", ZH)


def test_compliance_terms_extendable_by_file(tmp_path: Path) -> None:
    extra = tmp_path / "terms.json"
    extra.write_text(json.dumps({"en": ["unstoppable"], "zh": ["全网独有"]}), "utf-8")
    config = config_from_settings(Settings(compliance_terms_file=extra, diversity_threshold=0.7))
    assert config.diversity_threshold == 0.7
    assert "absolute_claim" in check("Unstoppable trail shoes", EN, [], config).reasons
    assert "absolute_claim" in check("全网独有的智能手表", ZH, [], config).reasons
    # the built-ins stay
    assert "absolute_claim" in check("The best trail shoes", EN, [], config).reasons
    assert "absolute_claim" not in check("Unstoppable trail shoes", EN, [], CONFIG).reasons


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"en": "best"}', "list of non-empty strings"),
        ('{"en": [""]}', "list of non-empty strings"),
        ('{"fr": ["meilleur"]}', "unknown locales"),
    ],
)
def test_bad_compliance_file_is_a_clear_config_error(
    tmp_path: Path, content: str, message: str
) -> None:
    extra = tmp_path / "terms.json"
    extra.write_text(content, "utf-8")
    with pytest.raises(ConfigError, match=message):
        config_from_settings(Settings(compliance_terms_file=extra))


def test_missing_compliance_file_is_a_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        config_from_settings(Settings(compliance_terms_file=tmp_path / "nope.json"))


# --- language and malformed text ---------------------------------------------------------
def test_wrong_language() -> None:
    assert "wrong_language" in reasons("Huawei smart watch, waterproof", ZH)
    assert "wrong_language" in reasons("华为智能手表 Stride", EN)
    assert "wrong_language" not in reasons("华为智能手表，GPS精准定位", ZH)  # mostly CJK
    assert "wrong_language" not in reasons("Stride trail shoes", EN)


@pytest.mark.parametrize(
    ("text", "brief"),
    [("智能手表\ufffd超长待机", ZH), ("Stride\x07 trail shoes", EN), ("Stride\ttrails", EN)],
)
def test_malformed(text: str, brief: Brief) -> None:
    assert "malformed" in reasons(text, brief)


def test_emoji_is_not_malformed() -> None:
    assert reasons("Stride trail shoes 🏃 grip wet rock", EN) == []


# --- diversity ---------------------------------------------------------------------------
def test_near_duplicate_of_existing_rejected_with_what_it_copies() -> None:
    existing = ["Stride X2: light shoes that grip wet rock"]
    report = check("Stride X2: lightweight shoes that grip wet rocks!", EN, existing, CONFIG)
    assert report.reasons == ["near_duplicate"]
    assert report.details["near_duplicate"]["similar_to"] == existing[0]
    assert report.details["near_duplicate"]["similarity"] >= CONFIG.diversity_threshold


def test_different_text_on_the_same_product_kept() -> None:
    existing = ["Stride X2: light shoes that grip wet rock"]
    assert reasons("Weekend trails are calling: lace up Stride", EN, existing) == []


def test_near_duplicate_zh() -> None:
    existing = ["华为智能手表，防水又超长待机"]
    assert "near_duplicate" in reasons("华为智能手表，防水又超长待机！", ZH, existing)
    assert "near_duplicate" not in reasons("陪你跑完全程的华为手表", ZH, existing)


def test_diversity_threshold_is_configurable() -> None:
    strict = GuardrailConfig(compliance=builtin_terms(), diversity_threshold=0.3)
    a, b = "Stride trail shoes grip wet rock", "Stride trail shoes for weekend runners"
    assert 0.3 <= similarity(a, b) < 0.8
    assert "near_duplicate" in check(b, EN, [a], strict).reasons
    assert "near_duplicate" not in check(b, EN, [a], CONFIG).reasons


def test_similarity_bounds() -> None:
    assert similarity("Stride shoes", "stride  SHOES!") == 1.0
    assert similarity("Stride shoes", "华为手表") == 0.0


def test_batch_metrics() -> None:
    m = batch_metrics(["run far", "run fast", "fly far"])
    # tokens: run far | run fast | fly far -> 4 distinct of 6; bigrams all 3 distinct
    assert m.n == 3
    assert m.distinct_1 == pytest.approx(4 / 6)
    assert m.distinct_2 == 1.0
    assert 0 < m.mean_pairwise_similarity < 1
    same = batch_metrics(["华为手表", "华为手表"])
    assert same.distinct_1 == pytest.approx(4 / 8)  # Chinese counts characters
    assert same.mean_pairwise_similarity == 1.0
    assert batch_metrics([]).n == 0


# --- the report and the configuration ---------------------------------------------------
def test_report_collects_every_failing_guardrail() -> None:
    report = check("Cheap, the best shoes " + "x" * 60, EN_BRAND, [], CONFIG)
    assert report.reasons == ["too_long", "brand_missing", "forbidden_word", "absolute_claim"]
    as_dict = report.as_dict()
    assert as_dict["passed"] is False and as_dict["reasons"] == report.reasons
    json.dumps(as_dict)  # JSON-ready, as stored


def test_a_good_text_passes_with_a_clean_report() -> None:
    report = check("Stride X2: grip wet rock, run light", EN_BRAND, ["Other text"], CONFIG)
    assert report.passed and report.reasons == [] and report.details == {}
    assert report.length == 35 and report.unit == "chars"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"diversity_threshold": 0.0}, "diversity_threshold=0.0"),
        ({"diversity_threshold": 1.5}, "diversity_threshold=1.5"),
        ({"min_chars": 0}, "min_chars=0"),
        ({"min_cjk_share_zh": 2.0}, "min_cjk_share_zh=2.0"),
    ],
)
def test_config_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GuardrailConfig(compliance=builtin_terms(), **kwargs)  # type: ignore[arg-type]


def test_compliance_terms_validation() -> None:
    with pytest.raises(ValueError, match="unknown locale 'fr'"):
        ComplianceTerms({"fr": ("meilleur",)})
    with pytest.raises(ValueError, match="non-empty strings"):
        ComplianceTerms({"en": ("best", " ")})
