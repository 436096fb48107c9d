"""Copy worth serving: ``invented_name`` and ``instruction_leak`` (pure), en and zh."""

from __future__ import annotations

import pytest
from _fixtures import STRIDE, WATCH  # bench/_fixtures.py

from adgen.brief import Brief
from adgen.generator.prompts import build_prompt
from adgen.guardrails import GuardrailConfig, builtin_terms, check, config_from_settings
from adgen.guardrails.leak import instruction_leaks
from adgen.guardrails.names import common_words, invented_names, stems
from adgen.loop import load_briefs
from adgen.settings import Settings

CONFIG = GuardrailConfig(compliance=builtin_terms())
EN = STRIDE.model_copy(update={"max_length": 120})
DEMO_EN = [b.model_copy(update={"max_length": 120}) for b in load_briefs() if b.locale == "en"]
STRIDE_AIR, BEANBOX = DEMO_EN


def reasons(text: str, brief: Brief, config: GuardrailConfig = CONFIG) -> list[str]:
    return check(text, brief, [], config).reasons


# --- the two texts a new user saw -------------------------------------------------------
def test_leaked_prompt_words_and_invented_name_are_both_reported() -> None:
    report = check("The Ultimate Trailwinner Ad - 60+ characters max", EN, [], CONFIG)
    assert report.reasons == ["instruction_leak", "invented_name"]
    assert report.details["invented_name"] == ["Trailwinner"]
    assert report.details["instruction_leak"] == ["60+ characters", "characters max"]


def test_a_product_the_brief_never_named_is_invented() -> None:
    report = check("The Peakline Peak Run, they're on your feet for a fair ride.", EN, [], CONFIG)
    assert report.reasons == ["invented_name"]
    assert report.details["invented_name"] == ["Peakline"]  # "Peak", "Run" are English


# --- invented_name ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "brief"),
    [
        ("Stride Air: 220 g of cushioned speed for your first half marathon", STRIDE_AIR),
        ("STRIDE's Trailrunners: Run Free On Wet Rock!", EN),  # case, possessive, plural
        ("Stride-Ready Trailrunner X2 Grips Wet Rock", EN),  # hyphenated parts
        ("Fresh BeanBox Beans, Roasted Within 48 Hours - Pause Anytime", BEANBOX),
        ("Beanbox: 12 Origins, One Grinder", BEANBOX),  # camel-case name in another case
        ("Lace up this Saturday with GPS-ready Stride shoes", EN),  # calendar word, acronym
        ("Springy soles. Grippy lugs! Zesty pace: Stride", EN),  # sentence-initial rare words
    ],
)
def test_names_of_the_brief_and_english_words_pass(text: str, brief: Brief) -> None:
    assert reasons(text, brief) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Lace up with Stride and Grippy soles", "Grippy"),  # mid-sentence: a name
        ("PeakLine grips wet rock", "PeakLine"),  # camel-case even at the start
        ("Stride shoes, now at BOSTONIA stores", "BOSTONIA"),  # capitals, not an acronym
        ("Run wet trails in Stride Vaporfly shoes", "Vaporfly"),
    ],
)
def test_names_the_brief_never_gave_are_refused(text: str, name: str) -> None:
    report = check(text, EN, [], CONFIG)
    assert report.reasons == ["invented_name"] and report.details["invented_name"] == [name]


def test_the_same_rare_word_passes_at_a_sentence_start_only() -> None:
    assert "grippy" not in common_words()  # else the test proves nothing
    assert invented_names("Grippy soles for Stride runners", EN) == []
    assert invented_names("Stride soles are Grippy", EN) == ["Grippy"]


def test_stems_strip_possessives_and_plain_endings() -> None:
    assert {"stride", "strides"} <= stems("Strides") and "stride" in stems("Stride's")
    assert "cushion" in stems("Cushioned") and "berry" in stems("Berries")


def test_chinese_text_is_not_read_for_names() -> None:
    assert "invented_name" not in reasons("华为手表 Peakline 新品，防水超长待机", WATCH)


def test_invented_name_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "The Peakline Peak Run, they're on your feet for a fair ride."
    assert config_from_settings(Settings()).invented_names
    off = config_from_settings(Settings(guard_invented_names=False))
    assert reasons(text, EN, off) == []
    monkeypatch.setenv("ADGEN_GUARD_INVENTED_NAMES", "false")
    assert reasons(text, EN, config_from_settings(Settings())) == []
    # the other guardrails stay on
    assert reasons("Headline: Stride shoes", EN, off) == ["instruction_leak"]


# --- instruction_leak ---------------------------------------------------------------------
@pytest.mark.parametrize("brief", [EN, WATCH, *DEMO_EN])
@pytest.mark.parametrize("channel", ["headline", "description", "social"])
def test_every_clause_of_our_prompt_is_a_leak(brief: Brief, channel: str) -> None:
    prompt = build_prompt(brief.model_copy(update={"channel": channel, "require_brand": True}))
    text = f"{prompt.system}\n{prompt.user}"
    clauses = [c for c in text.replace("。", "\n").replace(". ", "\n").splitlines() if c.strip()]
    assert len(clauses) >= 6
    for clause in clauses:
        assert instruction_leaks(clause), clause


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Headline: Stride shoes for wet rock", "headline:"),
        ("Stride trail shoes - a call to action for weekend runners", "call to action"),
        ("Here's a catchy slogan for Stride trail shoes", "here's a catchy slogan"),
        ("Stride shoes for our target audience", "target audience"),
        ("Stride shoes in a friendly brand voice", "brand voice"),
        ("Variant 2: Stride shoes grip wet rock", "variant 2"),
        ("Stride: grips wet rock (under 60 characters)", "60 characters"),
        ("Write a tagline for Stride trail shoes", "write a tagline"),
        ("30字以内的华为手表广告文案", "30字以内"),
        ("文案：华为手表，防水超长待机", "文案:"),
        ("华为手表，目标人群：喜欢运动的年轻人", "目标人群"),
    ],
)
def test_instruction_words_in_copy_are_refused(text: str, leak: str) -> None:
    brief = WATCH if any("\u4e00" <= ch <= "\u9fff" for ch in text) else EN
    report = check(text, brief, [], CONFIG)
    assert "instruction_leak" in report.reasons and leak in report.details["instruction_leak"]


@pytest.mark.parametrize(
    ("text", "brief"),
    [
        ("Write your own trail story in Stride shoes", EN),
        ("Stride trail shoes: max 2 per order, no labels to itch", EN),
        ("New product: Stride Trailrunner X2 for wet rock", EN),
        ("Reply with YES for 10% off Stride trail shoes", EN),
        ("Brief rain? Stride shoes grip wet rock", EN),
        ("新产品：华为智能手表，防水超长待机", WATCH),
        ("华为手表，品牌新品，续航14天", WATCH),
    ],
)
def test_copy_near_instruction_words_passes(text: str, brief: Brief) -> None:
    assert reasons(text, brief) == []
