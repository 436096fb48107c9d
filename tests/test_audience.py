"""The simulated audience: documented features move the true CTR the documented way;
bad audience files are refused with a message that names the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adgen.audience import AUDIENCES_DIR, Audience, AudienceError, load_audience

BASE = {"base_ctr": 0.03}


def ctr(spec: dict, text: str, brand: str | None = "Acme") -> float:
    return Audience.from_dict({**BASE, **spec}).true_ctr(text, brand=brand)


@pytest.mark.parametrize(
    ("key", "plain", "featured"),
    [
        ("has_number", "Shoes for runners", "Shoes for 3 runners"),
        ("has_question", "Shoes for runners", "Shoes for runners?"),
        ("has_exclamation", "Shoes for runners", "Shoes for runners!"),
        ("call_to_action", "Shoes for runners", "Shoes for runners, shop now"),
        ("mentions_brand", "Shoes for runners", "Acme shoes for runners"),
        ("emoji", "Shoes for runners", "Shoes for runners 🏃"),
    ],
)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_each_feature_moves_ctr_in_the_sign_of_its_weight(
    key: str, plain: str, featured: str, sign: float
) -> None:
    spec = {key: 0.5 * sign}
    assert (ctr(spec, featured) - ctr(spec, plain)) * sign > 0
    assert ctr({key: 0.0}, featured) == pytest.approx(ctr({key: 0.0}, plain))


def test_zero_weights_give_base_ctr_and_the_formula_holds() -> None:
    assert ctr({}, "anything at all") == pytest.approx(0.03)
    logit = np.log(0.03 / 0.97) + 0.3 + 0.5
    expected = 1 / (1 + np.exp(-logit))
    assert ctr({"has_number": 0.3, "call_to_action": 0.5}, "Try 2 now") == pytest.approx(expected)


def test_length_penalty_grows_with_distance_from_target() -> None:
    spec = {"length": {"target": 20, "weight": 0.8}}
    at_target, off_by_10, off_by_20 = "x" * 20, "x" * 30, "x" * 40
    assert ctr(spec, at_target) == pytest.approx(0.03)
    assert ctr(spec, at_target) > ctr(spec, off_by_10) > ctr(spec, off_by_20)
    logit = np.log(0.03 / 0.97) - 0.8 * 10 / 20
    assert ctr(spec, off_by_10) == pytest.approx(1 / (1 + np.exp(-logit)))


def test_call_to_action_per_locale_and_contains_is_case_insensitive() -> None:
    spec = {"call_to_action": 0.5, "contains": {"Free Shipping": 0.4, "包邮": 0.4}}
    assert ctr(spec, "华为手表，立即抢购") > ctr(spec, "华为手表，很好看")
    assert ctr(spec, "Watches with FREE SHIPPING") > ctr(spec, "Watches with shipping")
    assert ctr(spec, "华为手表包邮") > ctr(spec, "华为手表")
    # "try" must be a word: "country" does not fire the call to action
    assert ctr(spec, "Country music") == pytest.approx(ctr(spec, "Classic music"))


def test_noise_is_per_text_deterministic_and_seeded() -> None:
    a = Audience.from_dict({**BASE, "noise_std": 0.3, "seed": 1})
    b = Audience.from_dict({**BASE, "noise_std": 0.3, "seed": 2})
    assert a.true_ctr("same text") == a.true_ctr("same text")
    assert a.true_ctr("same text") != b.true_ctr("same text")
    noises = [a.noise(f"text {i}") for i in range(2000)]
    assert np.std(noises) == pytest.approx(0.3, rel=0.1)


def test_simulated_clicks_follow_the_rate_and_conversions_follow_clicks() -> None:
    aud = Audience.from_dict({**BASE, "conversion_rate": 0.25})
    clicks, conversions = aud.simulate(0.1, np.random.default_rng(0), size=200_000)
    assert clicks.mean() == pytest.approx(0.1, rel=0.03)
    assert not (conversions & ~clicks).any()
    assert conversions.sum() / clicks.sum() == pytest.approx(0.25, rel=0.05)


def test_shipped_audiences_load() -> None:
    files = sorted(AUDIENCES_DIR.glob("*.json"))
    assert len(files) >= 2
    for path in files:
        assert 0 < load_audience(path).base_ctr < 1
    assert load_audience().name == "default"


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"base_ctr": 0.03, "has_emoji": 0.1}, "has_emoji"),
        ({"noise_std": 0.1}, "base_ctr"),
        ({"base_ctr": 1.5}, "base_ctr"),
        ({"base_ctr": 0.03, "noise_std": -1}, "noise_std"),
        ({"base_ctr": 0.03, "seed": 1.5}, "seed"),
        ({"base_ctr": 0.03, "has_number": "high"}, "has_number"),
        ({"base_ctr": 0.03, "length": {"target": 0}}, "length.target"),
        ({"base_ctr": 0.03, "length": {"target": 50, "slope": 1}}, "length.slope"),
        ({"base_ctr": 0.03, "contains": ["free"]}, "contains"),
        ({"base_ctr": 0.03, "contains": {"free": None}}, "contains.free"),
        ({"base_ctr": 0.03, "conversion_rate": 2}, "conversion_rate"),
    ],
)
def test_bad_audiences_are_refused_naming_the_key(spec: dict, named: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(AudienceError, match=named.replace(".", r"\.")):
        load_audience(path)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AudienceError, match="does not exist"):
        load_audience(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(AudienceError, match="not valid JSON"):
        load_audience(broken)


def test_segments_lay_their_keys_over_the_base_and_normalise_shares() -> None:
    spec = {"base_ctr": 0.03, "has_number": 0.5, "segments": {
        "a": {"share": 3, "has_number": -1.0}, "b": {"share": 1, "base_ctr": 0.1}}}
    aud = Audience.from_dict(spec)
    assert [(n, share) for n, share, _ in aud.segments] == [("a", 0.75), ("b", 0.25)]
    assert aud.segment("a").weights["has_number"] == -1.0
    assert aud.segment("b").weights["has_number"] == 0.5 and aud.segment("b").base_ctr == 0.1
    assert aud.segment("a").true_ctr("3 shoes") < aud.true_ctr("3 shoes")
    with pytest.raises(AudienceError, match="no segment 'c'.*a, b"):
        aud.segment("c")
    assert Audience.from_dict({"base_ctr": 0.03}).segments == ()  # old files: no segments
    shipped = load_audience(AUDIENCES_DIR / "segmented.json")
    mobile, desktop = shipped.segment("mobile"), shipped.segment("desktop")
    short = "Trail shoes? Try Acme"
    long = "Run 20 km further in Acme trail shoes built for long weekends"
    assert mobile.true_ctr(short) > mobile.true_ctr(long)
    assert desktop.true_ctr(long) > desktop.true_ctr(short)  # the segments disagree


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([], "non-empty object"),
        ({"a": {"share": 0}}, "share must be > 0"),
        ({"a": {"segments": {}}}, "must not have segments"),
        ({"a": {"base_ctr": 2}}, "segment 'a'.*base_ctr"),
        ({"a": 1}, "must be an object"),
    ],
)
def test_bad_segments_are_refused_naming_the_segment(segments: object, message: str) -> None:
    with pytest.raises(AudienceError, match=message):
        Audience.from_dict({"base_ctr": 0.03, "segments": segments})
