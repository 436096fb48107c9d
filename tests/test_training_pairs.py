"""Preference data and training configuration (pure core: no database, no model)."""

from __future__ import annotations

from dataclasses import MISSING, fields

import pytest

from adgen.settings import Settings
from adgen.training.config import TrainConfig
from adgen.training.pairs import (
    ArmOutcome,
    CampaignEvidence,
    binary_examples,
    dpo_rows,
    examples_from_pairs,
    kto_rows,
    live_pairs,
    ranked_pairs,
    split_heldout,
)
from adgen.vocabulary import Trainer

PROMPT = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def _campaign(*arms: tuple[int, str, int, int], cid: int = 1) -> CampaignEvidence:
    return CampaignEvidence(cid, PROMPT, tuple(ArmOutcome(*a) for a in arms))


def test_live_pairs_need_the_posterior_probability_threshold() -> None:
    evidence = [
        _campaign(
            (1, "Save 30% now", 80, 1000),  # clearly better than 2
            (2, "Shoes", 20, 1000),
            (3, "Shoes too", 22, 1000),  # indistinguishable from 2
            (4, "unseen", 0, 0),  # no evidence: never paired
        )
    ]
    pairs = live_pairs(evidence, 0.9)
    assert {(p.chosen, p.rejected) for p in pairs} == {
        ("Save 30% now", "Shoes"),
        ("Save 30% now", "Shoes too"),
    }
    assert all(p.strength >= 0.9 and p.source == "live" and p.prompt == PROMPT for p in pairs)


def test_live_pairs_stay_within_a_campaign() -> None:
    evidence = [_campaign((1, "good", 90, 1000), cid=1), _campaign((2, "bad", 10, 1000), cid=2)]
    assert live_pairs(evidence, 0.9) == []


def test_binary_examples_compare_each_variant_with_the_rest_pooled() -> None:
    evidence = [
        _campaign(
            (1, "winner", 90, 1000),
            (2, "loser", 10, 1000),
            (3, "middle", 50, 1000),
        )
    ]
    labels = {e.completion: e.desirable for e in binary_examples(evidence, 0.9)}
    assert labels == {"winner": True, "loser": False}  # "middle" matches the rest: no example


def test_ranked_pairs_prefer_the_best_passing_samples_over_the_worst_and_the_failed() -> None:
    texts = ["best but unsafe", "good", "fine", "meh", "bad", "bad", "long rant"]
    scores = [0.9, 0.6, 0.5, 0.3, 0.1, 0.1, 0.4]
    passed = [False, True, True, True, True, True, False]
    pairs = ranked_pairs(7, PROMPT, texts, scores, passed, k=2)
    got = {(p.chosen, p.rejected) for p in pairs}
    # the 2 best passing over the 2 worst passing ("bad" counted once) and the 2 worst failing
    assert got == {
        (c, r) for c in ("good", "fine") for r in ("meh", "bad", "long rant", "best but unsafe")
    }
    assert len(pairs) == len(got) and all(p.source == "reward_model" for p in pairs)
    strength = {(p.chosen, p.rejected): p.strength for p in pairs}
    assert strength[("good", "bad")] == pytest.approx(0.5)
    assert strength[("fine", "best but unsafe")] == pytest.approx(-0.4)  # compliance pair
    # a failed text is never chosen; too few passing texts: chosen ones are not also rejected
    few = ranked_pairs(7, PROMPT, ["a", "b", "c"], [0.9, 0.5, 0.1], [False, True, True], k=4)
    assert {(p.chosen, p.rejected) for p in few} == {("b", "a"), ("c", "a")}
    assert ranked_pairs(7, PROMPT, ["a", "b"], [0.5, 0.5], [True, True], k=1) == []  # no gap
    assert ranked_pairs(7, PROMPT, ["a", "b"], [0.5, 0.1], [False, False], k=1) == []
    with pytest.raises(ValueError, match="same length"):
        ranked_pairs(7, PROMPT, ["a"], [0.5, 0.1], [True], k=1)
    with pytest.raises(ValueError, match="k must be"):
        ranked_pairs(7, PROMPT, ["a"], [0.5], [True], k=0)


def test_pairs_become_kto_examples_once_per_text() -> None:
    pairs = ranked_pairs(3, PROMPT, ["a", "b", "c", "d"], [0.9, 0.8, 0.2, 0.1], [True] * 4, k=2)
    examples = examples_from_pairs(pairs)
    assert sorted((e.completion, e.desirable) for e in examples) == [
        ("a", True),
        ("b", True),
        ("c", False),
        ("d", False),
    ]
    assert {e.completion: e.strength for e in examples}["a"] == pytest.approx(0.8)


def test_heldout_split_is_by_variant_stratified_and_disjoint() -> None:
    arms = [(i, f"text {i}", 10 * i, 1000) for i in range(1, 11)]
    train, heldout = split_heldout([_campaign(*arms)], 0.25, seed=3)
    train_ids = {a.variant_id for a in train[0].arms}
    held_ids = {a.variant_id for a in heldout[0].arms}
    assert train_ids.isdisjoint(held_ids) and train_ids | held_ids == set(range(1, 11))
    assert 2 <= len(held_ids) <= 3
    ranks = sorted(held_ids)
    assert ranks[0] <= 4 and ranks[-1] >= 7  # both ends of the ranking are held out
    # held-out pairs only compare held-out texts
    texts = {a.text for a in heldout[0].arms}
    assert all(p.chosen in texts and p.rejected in texts for p in live_pairs(heldout, 0.9))
    # small campaigns stay in training
    train, heldout = split_heldout([_campaign(*arms[:3])], 0.25, seed=3)
    assert heldout == [] and len(train[0].arms) == 3


def test_rows_have_the_trl_conversational_shape() -> None:
    (pair,) = ranked_pairs(1, PROMPT, ["a", "b"], [1.0, 0.0], [True, True], k=1)
    assert dpo_rows([pair]) == [
        {
            "prompt": PROMPT,
            "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "b"}],
        }
    ]
    pairs = ranked_pairs(1, PROMPT, [f"t{i}" for i in range(8)], list(range(8)), [True] * 8, 4)
    rows = kto_rows(examples_from_pairs(pairs), seed=0)
    assert sorted((r["label"] for r in rows), key=bool) == [False] * 4 + [True] * 4
    assert [r["label"] for r in rows] != [True] * 4 + [False] * 4  # shuffled


@pytest.mark.parametrize(
    ("arm", "message"),
    [((1, "x", 5, 3), "successes <= trials"), ((1, "x", -1, 3), "successes <= trials")],
)
def test_bad_outcomes_are_refused(arm: tuple[int, str, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ArmOutcome(*arm)


def test_bad_thresholds_and_shares_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        live_pairs([], 0.4)
    with pytest.raises(ValueError, match="share"):
        split_heldout([], 1.0, seed=0)


def test_train_config_from_settings_and_validation() -> None:
    settings = Settings(
        trainer="kto", train_steps=7, train_batch_size=6, learning_rate=2e-3, dpo_beta=0.3,
        dpo_sft_weight=0.5, lora_r=4, lora_alpha=8, lora_targets=["q_proj"], max_length=64,
        rl_num_generations=3, rl_max_completion_length=12, train_seed=5,
    )
    config = TrainConfig.from_settings(settings)
    assert config.as_dict() == {
        "trainer": "kto", "steps": 7, "batch_size": 6, "learning_rate": 2e-3, "beta": 0.3,
        "sft_weight": 0.5, "lora_r": 4, "lora_alpha": 8, "lora_targets": ["q_proj"],
        "max_length": 64, "num_generations": 3, "max_completion_length": 12, "seed": 5,
    }
    assert config.trainer is Trainer.KTO and config.is_preference
    assert TrainConfig.from_settings(settings, trainer="grpo").trainer is Trainer.GRPO
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig.from_settings(settings, batch_size=1)
    with pytest.raises(ValueError, match="multiple of num_generations"):
        TrainConfig.from_settings(settings, trainer="grpo", batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="trainer must be one of"):
        TrainConfig.from_settings(settings, trainer="ppo")
    with pytest.raises(ValueError, match="lora_targets is empty"):
        TrainConfig.from_settings(settings, lora_targets=())


def test_train_config_has_no_defaults_of_its_own() -> None:
    """Every default lives in Settings, so the two cannot drift apart."""
    assert [f.name for f in fields(TrainConfig) if f.default is not MISSING] == []
    assert [f.name for f in fields(TrainConfig) if f.default_factory is not MISSING] == []
