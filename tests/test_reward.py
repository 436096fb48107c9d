"""The reward model: learns a feature that drives CTR, round-trips, and is kept only if better."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from adgen.brief import Brief
from adgen.db.campaigns import add_variants, create_campaign
from adgen.db.engine import transaction
from adgen.db.models import ArmStats, RewardModelRecord
from adgen.errors import ModelError
from adgen.history.importer import import_file
from adgen.history.reader import ColumnMap
from adgen.reward import FeatureSpec, RewardConfig, RewardModel
from adgen.reward.evaluation import evaluate, impression_auc, two_proportion_p
from adgen.reward.features import HANDCRAFTED_NAMES, handcrafted
from adgen.reward.training import holdout_split, live_evidence, load_active, train_and_store
from adgen.settings import Settings

PRODUCTS = ["running shoes", "coffee beans", "desk lamps", "yoga mats", "travel bags",
            "phone cases", "water bottles", "rain jackets", "board games", "tea sets"]
OPENERS = ["Meet the", "Discover our", "Our new", "The classic", "Say hello to", "All about the",
           "Inside the", "Here are the"]
ENDINGS = ["for every day", "made to last", "you will love", "in five colours", "for your home",
           "built for comfort", "with free returns", "for the weekend"]
DRIVER = "zorblat"  # the made-up word that truly doubles the odds of a click
FAST = RewardConfig(embeddings="none")


def _world(seed: int, products: list[str]) -> tuple[list[str], list[Brief], np.ndarray, np.ndarray]:
    """Arms whose true CTR depends on the DRIVER word only; counts drawn binomially."""
    rng = np.random.default_rng(seed)
    texts, briefs, clicks, impressions = [], [], [], []
    for product in products:
        brief = Brief(name=product, product=product, brand="Acme", audience="shoppers")
        for i, (opener, ending) in enumerate(zip(OPENERS, ENDINGS, strict=True)):
            driven = i % 2 == 0
            text = f"{opener} {product} {ending}" + (f" {DRIVER}" if driven else "")
            ctr = 1 / (1 + np.exp(-(np.log(0.02 / 0.98) + (1.0 if driven else 0.0))))
            n = int(rng.integers(1500, 3000))
            texts.append(text)
            briefs.append(brief)
            impressions.append(n)
            clicks.append(int(rng.binomial(n, ctr)))
    return texts, briefs, np.array(clicks, float), np.array(impressions, float)


def test_handcrafted_features_see_what_they_name() -> None:
    brief = Brief(name="n", product="Acme running shoes", brand="Acme", audience="a")
    rows = handcrafted(["Buy 2 Acme shoes now!", "安静的房间", "Why?"], [brief, None, None])
    col = {name: i for i, name in enumerate(HANDCRAFTED_NAMES)}
    assert rows.shape == (3, len(HANDCRAFTED_NAMES))
    assert rows[0, col["has_digit"]] == 1 and rows[0, col["call_to_action"]] == 1
    assert rows[0, col["mentions_brand"]] == 1 and rows[0, col["exclamation"]] == 1
    assert rows[0, col["product_overlap"]] > 0
    assert rows[1, col["cjk_share"]] == 1.0 and rows[1, col["has_digit"]] == 0
    assert rows[2, col["question"]] == 1 and rows[2, col["call_to_action"]] == 0


def test_evaluation_figures() -> None:
    # Arm 0 beats 1 beats 2 within group "g"; arm 3 is alone in its group.
    s, n = np.array([60, 40, 20, 5]), np.array([1000, 1000, 1000, 100])
    groups, texts = ["g", "g", "g", "h"], ["a", "b", "c", "d"]
    perfect = evaluate([3, 2, 1, 0], [0.06, 0.04, 0.02, 0.05], s, n, groups, texts)
    assert perfect["pairs"] == 3 and perfect["pairwise_acc"] == 1.0
    assert perfect["spearman"] == pytest.approx(1.0)
    assert perfect["ece"] == pytest.approx(0.0, abs=1e-12)
    backwards = evaluate([1, 2, 3, 0], [0.05] * 4, s, n, groups, texts)
    assert backwards["pairwise_acc"] == 0.0 and backwards["spearman"] == pytest.approx(-1.0)
    assert impression_auc([0, 0], [5, 5], [10, 10]) == pytest.approx(0.5)
    assert impression_auc([1, 0], [10, 0], [10, 10]) == pytest.approx(1.0)
    assert two_proportion_p([60], [1000], [20], [1000])[0] < 0.001
    assert two_proportion_p([50], [1000], [50], [1000])[0] == pytest.approx(1.0)


def test_model_learns_the_driving_feature_across_campaigns() -> None:
    texts, briefs, s, n = _world(1, PRODUCTS[:7])
    model = RewardModel(FAST).fit(texts, briefs, s, n)
    # New campaigns, never seen: the driven texts must rank above their undriven twins.
    new_texts, new_briefs, new_s, new_n = _world(2, PRODUCTS[7:])
    logits = model.score_logit(new_texts, new_briefs)
    groups = [b.product for b in new_briefs]
    figures = evaluate(logits, 1 / (1 + np.exp(-logits)), new_s, new_n, groups, new_texts)
    assert figures["pairwise_acc"] > 0.75
    assert figures["auc"] > 0.55
    pair = [f"Our new tea sets made to last {DRIVER}", "Our new tea sets made to last"]
    assert model.rank(pair, new_briefs[-1]).tolist() == [0, 1]
    assert model.rank(pair[::-1], new_briefs[-1]).tolist() == [1, 0]
    rates = model.score(pair, [new_briefs[-1]] * 2)
    assert 0 < rates[1] < rates[0] < 1
    assert abs(model.prior_rate - s.sum() / n.sum()) < 1e-9


def test_fit_counts_successes_beyond_trials_as_the_trials() -> None:
    texts, briefs, s, n = _world(1, PRODUCTS[:3])
    over = s.copy()
    over[0] = n[0] + 1  # a click whose impression was lost
    clamped = s.copy()
    clamped[0] = n[0]
    model = RewardModel(FAST).fit(texts, briefs, over, n)
    same = RewardModel(FAST).fit(texts, briefs, clamped, n)
    assert model.prior_rate == pytest.approx(clamped.sum() / n.sum())
    np.testing.assert_allclose(model.score_logit(texts, briefs), same.score_logit(texts, briefs))


def test_fit_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="successes >= 0"):
        RewardModel(FAST).fit(["a", "b"], None, [-1, 1], [4, 10])
    with pytest.raises(ValueError, match="trials > 0"):
        RewardModel(FAST).fit(["a", "b"], None, [0, 1], [0, 10])
    with pytest.raises(ValueError, match="2 texts, 3 successes"):
        RewardModel(FAST).fit(["a", "b"], None, [1, 1, 1], [4, 10, 3])
    with pytest.raises(ValueError, match="alpha"):
        RewardConfig(alpha=0)
    with pytest.raises(ModelError, match="not fitted"):
        RewardModel(FAST).score(["a"])


def test_save_load_round_trip_with_real_embeddings(tmp_path: Path) -> None:
    texts, briefs, s, n = _world(3, PRODUCTS[:3])
    model = RewardModel(RewardConfig(embeddings="minilm")).fit(texts, briefs, s, n)
    assert model.embedding_model == "all-MiniLM-L6-v2"
    probe = ["Meet the tea sets for every day", f"Inside the tea sets made to last {DRIVER}"]
    before = model.score(probe, [briefs[0]] * 2)
    folder = model.save(tmp_path / "rm")
    loaded = RewardModel.load(folder)
    np.testing.assert_allclose(loaded.score(probe, [briefs[0]] * 2), before, rtol=1e-6)
    assert loaded.n_train == len(texts) and loaded.embedding_model == model.embedding_model
    with pytest.raises(ModelError, match="no reward model"):
        RewardModel.load(tmp_path / "nowhere")


def _seed_live(session: Session, seed: int) -> None:
    texts, briefs, s, n = _world(seed, PRODUCTS)
    by_product: dict[str, int] = {}
    for text, brief, clicks, impressions in zip(texts, briefs, s, n, strict=True):
        if brief.product not in by_product:
            by_product[brief.product] = create_campaign(session, brief).id
        (variant,) = add_variants(session, by_product[brief.product], [text])
        stats = session.get(ArmStats, variant.id)
        assert stats is not None
        stats.impressions, stats.clicks = int(impressions), int(clicks)
    session.flush()


def _statuses(session: Session) -> dict[int, str]:
    rows = session.execute(sa.select(RewardModelRecord.id, RewardModelRecord.status))
    return {i: status for i, status in rows}


def test_train_and_store_keeps_the_better_model(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    settings = settings.model_copy(update={"reward_embeddings": "none"})
    with transaction(pg_sessions) as session:
        assert train_and_store(session, settings) is None  # no evidence yet
        assert load_active(session, settings) is None
        _seed_live(session, 4)

    with transaction(pg_sessions) as session:
        first = train_and_store(session, settings)
        assert first is not None and first.status == "active" and first.source == "live"
        assert first.metrics["primary_metric"] == "pairwise_acc"
        assert first.metrics["pairwise_acc"] > 0.7  # same-type pairs are coin flips
        assert Path(first.path, "reward_model.joblib").is_file()
        assert Path(first.path).is_relative_to(settings.var_dir.resolve())
        assert first.data_window_start is not None and first.data_window_end is not None
        first_id = first.id

    blind = RewardConfig(
        features=FeatureSpec(word_ngrams=None, char_ngrams=None, handcrafted=False, brief=False),
        embeddings="none",
    )
    with transaction(pg_sessions) as session:
        worse = train_and_store(session, settings, config=blind)
        assert worse is not None and worse.status == "rejected"
        assert worse.metrics["previous_id"] == first_id
        assert worse.metrics["pairwise_acc"] < worse.metrics["previous_metrics"]["pairwise_acc"]
    with transaction(pg_sessions) as session:
        active = load_active(session, settings)
        assert active is not None and active.config.features.word_ngrams is not None
        statuses = _statuses(session)
        assert statuses[first_id] == "active"

    with transaction(pg_sessions) as session:
        again = train_and_store(session, settings, config=replace(FAST, alpha=10.0))
        assert again is not None and again.status == "active"
    with pg_sessions() as session:
        statuses = _statuses(session)
    assert statuses[first_id] == "retired"
    assert sorted(statuses.values()) == ["active", "rejected", "retired"]


def test_training_survives_more_clicks_than_impressions(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    """One lost impression on a paused variant must not stop every later training cycle."""
    settings = settings.model_copy(update={"reward_embeddings": "none"})
    with transaction(pg_sessions) as session:
        _seed_live(session, 4)
        stats = session.execute(sa.select(ArmStats).order_by(ArmStats.variant_id)).scalars()
        first = next(iter(stats))
        first.clicks = first.impressions + 3
    with transaction(pg_sessions) as session:
        evidence = live_evidence(session)
        assert (evidence.successes <= evidence.trials).all()
        assert evidence.successes[0] == evidence.trials[0]
        record = train_and_store(session, settings)
    assert record is not None and record.status == "active"


def test_train_on_historical_evidence(
    tmp_path: Path, settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    texts, _briefs, s, n = _world(5, PRODUCTS)
    lines = ["test,text,impressions,clicks"] + [
        f"t{i // len(OPENERS)},{t},{int(b)},{int(a)}"
        for i, (t, a, b) in enumerate(zip(texts, s, n, strict=True))
    ]
    path = tmp_path / "past.csv"
    path.write_text("\n".join(lines) + "\n")
    with transaction(pg_sessions) as session:
        import_file(session, path, ColumnMap("test", "text", "impressions", "clicks",
                                             group="", week=""))
    settings = settings.model_copy(update={"reward_embeddings": "none"})
    with transaction(pg_sessions) as session:
        assert train_and_store(session, settings, "live") is None  # history is not live
        record = train_and_store(session, settings, "historical")
        assert record is not None and record.source == "historical" and record.status == "active"
        assert record.metrics["pairwise_acc"] > 0.7
        assert record.n_train + record.metrics["n_eval"] == len(texts)
        both = train_and_store(session, settings, "both")
        assert both is not None and both.source == "both"
        assert both.n_train + both.metrics["n_eval"] == len(texts)


def test_the_holdout_split_is_stable_as_evidence_grows() -> None:
    """An arm held out once stays held out (and a training arm stays in training) when new
    arms arrive, so the active model is never judged on arms it was trained on."""
    keys = [f"variant:{i}" for i in range(200)]
    units = ["campaign:1", "campaign:2"] * 100  # too few campaigns: arms are split
    train_small, held_small = holdout_split(units[:60], keys[:60], 0.25)
    train_big, held_big = holdout_split(units, keys, 0.25)
    assert set(held_small) == set(held_big) & set(range(60))
    assert set(train_small) == set(train_big) & set(range(60))
    assert 0.15 < len(held_big) / 200 < 0.35
    assert set(train_big) | set(held_big) == set(range(200))


def test_the_holdout_split_keeps_whole_campaigns_and_holds_at_least_one() -> None:
    """With enough campaigns, each is wholly held out or wholly trained on; a split always
    holds out one arm and keeps one for training."""
    units = [f"campaign:{i % 12}" for i in range(120)]
    keys = [f"variant:{i}" for i in range(120)]
    train, held = holdout_split(units, keys, 0.25)
    held_units = {units[i] for i in held}
    assert held_units and not held_units & {units[i] for i in train}
    for share in (1e-9, 0.999999):
        train, held = holdout_split(units[:3], keys[:3], share)
        assert len(held) >= 1 and len(train) >= 1


def test_handcrafted_block_is_a_setting() -> None:
    from adgen.reward.training import config_from_settings
    from adgen.settings import Settings

    assert config_from_settings(Settings()).features.handcrafted
    config = config_from_settings(Settings(reward_handcrafted=False))
    assert not config.features.handcrafted
    texts = ["Buy 2 Acme shoes now!", "Acme shoes", "Why Acme?", "Acme runs far"]
    ablated = RewardModel(replace_embeddings(config)).fit(texts, None, [9, 3, 2, 1], [100] * 4)
    full = RewardModel(replace_embeddings(config_from_settings(Settings()))).fit(
        texts, None, [9, 3, 2, 1], [100] * 4
    )
    assert ablated._featurizer is not None and ablated._featurizer._scaler is None
    assert full._featurizer is not None and full._featurizer._scaler is not None


def replace_embeddings(config: RewardConfig) -> RewardConfig:
    from dataclasses import replace

    return replace(config, embeddings="none")
