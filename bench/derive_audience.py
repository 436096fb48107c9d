"""Derive a simulated audience from real clicks: the Upworthy headline tests.

Only within-test comparisons count: every arm's empirical logit CTR and every feature are
centred on their comparison group (the same test and the same image), so what a test's
topic or week does to its base rate drops out. The weights are a weighted ridge fit
(weights: inverse sampling variance of each logit) of the centred logits on

- the audience format's own terms: ``has_number``, ``has_question``, ``has_exclamation``,
  ``call_to_action``, ``emoji`` and the ``length`` penalty, whose target is the one (on a
  grid of 20 to 120 characters) that fits best;
- ``contains`` terms for the ``--words`` most informative words (4+ letters, in at least
  ``--min-arms`` arms): those whose single within-group slope has the largest |t|,
  matched as the simulator matches them, as case-insensitive substrings.

``base_ctr`` is the pooled CTR, ``noise_std`` the spread of true logits left unexplained
(method of moments). Deterministic: the same file gives the same audience.

    python bench/derive_audience.py --data FILE --out FILE [--words 20] [--min-arms 30]
                                    [--before YYYYWW]

Data: the Upworthy Research Archive (Matias, Munger, Aubin Le Quere, Ebersole, 2021,
Scientific Data 8:195, doi:10.1038/s41597-021-00934-7), CC BY 4.0.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _report import emit, table  # bench/_report.py, beside this script

from adgen.audience import Audience
from adgen.history.reader import ArmRow, ColumnMap, read_experiments

DEFAULT_DATA = Path("data/upworthy/upworthy-tests-before-2014w40.csv.gz")
SOURCE = (
    "Weights fitted by bench/derive_audience.py on within-test comparisons of {file} from "
    "the Upworthy Research Archive (Matias, Munger, Aubin Le Quere & Ebersole, 2021, "
    "Scientific Data 8:195, doi:10.1038/s41597-021-00934-7), CC BY 4.0."
)
FORMAT_TERMS = ("has_number", "has_question", "has_exclamation", "call_to_action", "emoji")
LENGTH_TARGETS = tuple(range(20, 121, 10))
_WORD = re.compile(r"[a-z][a-z']{3,}")
_PROBE = Audience(base_ctr=0.5)


def format_features(texts: Sequence[str], target: float) -> np.ndarray:
    """Columns: the audience format's terms, then its length penalty for ``target``."""
    rows = []
    for text in texts:
        feats = _PROBE.features(text, None, "en")
        rows.append([feats[k] for k in FORMAT_TERMS] + [-abs(len(text) - target) / target])
    return np.array(rows, dtype=np.float64)


def contains(texts: Sequence[str], words: Sequence[str]) -> np.ndarray:
    """1.0 where a word occurs in a text as a case-insensitive substring (as simulated)."""
    lowered = [t.lower() for t in texts]
    return np.array([[float(w in t) for w in words] for t in lowered], dtype=np.float64)


def centre(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``x`` minus its mean within each group (rows of a group share an id)."""
    sums = np.zeros((groups.max() + 1, *x.shape[1:]))
    np.add.at(sums, groups, x)
    counts = np.bincount(groups).reshape(-1, *([1] * (x.ndim - 1)))
    return x - (sums / counts)[groups]


def wls(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float) -> np.ndarray:
    """Weighted ridge solution (no intercept: the data are centred)."""
    xw = x * w[:, None]
    return np.linalg.solve(x.T @ xw + alpha * np.eye(x.shape[1]), xw.T @ y)


def informative_words(
    texts: Sequence[str], y: np.ndarray, w: np.ndarray, groups: np.ndarray, k: int, min_arms: int
) -> list[tuple[str, float]]:
    """The ``k`` words with the largest |t| of their own within-group slope, with that t."""
    counts = Counter(w_ for t in texts for w_ in set(_WORD.findall(t.lower())))
    vocab = sorted(word for word, c in counts.items() if c >= min_arms)
    x = centre(contains(texts, vocab), groups)
    sxx = (x * x * w[:, None]).sum(axis=0)
    slope = (x * (y * w)[:, None]).sum(axis=0) / np.maximum(sxx, 1e-12)
    resid_var = float(np.average(y * y, weights=w))
    t = slope / np.sqrt(resid_var / np.maximum(sxx, 1e-12))
    order = sorted(range(len(vocab)), key=lambda i: (-abs(t[i]), vocab[i]))[:k]
    return [(vocab[i], float(t[i])) for i in order]


def comparable(rows: list[ArmRow]) -> tuple[list[ArmRow], np.ndarray]:
    """Arms in groups (test, image) of at least two distinct headlines, and group ids."""
    by: dict[tuple[str, str | None], list[ArmRow]] = defaultdict(list)
    for r in rows:
        if r.impressions > 0 and r.text.strip():
            by[(r.test_id, r.group)].append(r)
    kept: list[ArmRow] = []
    ids: list[int] = []
    for key in sorted(by, key=lambda g: (g[0], g[1] or "")):
        arms = by[key]
        if len({a.text for a in arms}) >= 2:
            ids += [ids[-1] + 1 if ids else 0] * len(arms)
            kept += arms
    return kept, np.array(ids, dtype=np.int64)


def derive(rows: list[ArmRow], n_words: int, min_arms: int, file: str) -> dict[str, Any]:
    """The audience spec fitted on ``rows`` and the fit's figures."""
    arms, groups = comparable(rows)
    if len(arms) < 10:
        raise SystemExit(f"only {len(arms)} comparable arms: need tests with 2+ headlines")
    texts = [a.text for a in arms]
    c = np.array([a.clicks for a in arms], dtype=np.float64)
    n = np.array([a.impressions for a in arms], dtype=np.float64)
    logit = np.log((c + 0.5) / (n - c + 0.5))
    var = 1 / (c + 0.5) + 1 / (n - c + 0.5)
    y = centre(logit, groups)
    w = 1 / var
    w /= w.mean()
    words = informative_words(texts, y, w, groups, n_words, min_arms)
    word_x = contains(texts, [word for word, _ in words])
    best: tuple[float, int, np.ndarray] | None = None
    for target in LENGTH_TARGETS:
        x = centre(np.hstack([format_features(texts, target), word_x]), groups)
        beta = wls(x, y, w, alpha=1.0)
        sse = float(np.sum(w * (y - x @ beta) ** 2))
        if best is None or sse < best[0]:
            best = (sse, target, beta)
    assert best is not None
    sse, target, beta = best
    x = centre(np.hstack([format_features(texts, target), word_x]), groups)
    resid = y - x @ beta
    sizes = np.bincount(groups)[groups]
    # centring shrinks variance by (m-1)/m in a group of m arms
    noise_var = float(np.mean(resid**2 * sizes / np.maximum(sizes - 1, 1)) - var.mean())
    k = len(FORMAT_TERMS)
    spec: dict[str, Any] = {
        "base_ctr": round(float(c.sum() / n.sum()), 5),
        "noise_std": round(float(np.sqrt(max(noise_var, 0.0))), 4),
        "seed": 31,
        "length": {"target": target, "weight": round(float(beta[k]), 4)},
        **{term: round(float(beta[i]), 4) for i, term in enumerate(FORMAT_TERMS)},
        "contains": {word: round(float(beta[k + 1 + i]), 4) for i, (word, _) in enumerate(words)},
        "source": SOURCE.format(file=file),
    }
    figures = {
        "arms": len(arms),
        "groups": int(groups.max() + 1),
        "length_target": target,
        "word_t": {word: round(t, 2) for word, t in words},
        "weighted_r2": round(1 - sse / float(np.sum(w * y**2)), 4),
    }
    return {"spec": spec, "figures": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Upworthy CSV(.gz)")
    parser.add_argument("--out", type=Path, required=True, help="audience JSON to write")
    parser.add_argument("--words", type=int, default=20, help="contains terms to fit")
    parser.add_argument("--min-arms", type=int, default=30, help="arms a word must occur in")
    parser.add_argument("--before", type=int, default=None, help="only tests before YYYYWW")
    parser.add_argument("--quick", action="store_true", help="the first 300 tests only")
    parser.add_argument("--seed", type=int, default=0, help="unused: the fit is deterministic")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data} does not exist; pass --data FILE (an Upworthy CSV)")
    rows = [r for r in read_experiments(args.data, ColumnMap()).rows
            if args.before is None or (r.week is not None and r.week < args.before)]
    if args.quick:
        tests = sorted({r.test_id for r in rows})[:300]
        keep = set(tests)
        rows = [r for r in rows if r.test_id in keep]
    result = derive(rows, args.words, args.min_arms if not args.quick else 5, args.data.name)
    spec, figures = result["spec"], result["figures"]
    Audience.from_dict(spec)  # what we write must load
    args.out.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(spec["source"])
    table(
        f"audience fitted on {figures['arms']} arms in {figures['groups']} comparisons "
        f"(weighted R² {figures['weighted_r2']}), written to {args.out}",
        ["term", "weight", "t (alone)"],
        [(t, spec[t], None) for t in FORMAT_TERMS]
        + [(f"length (target {spec['length']['target']})", spec["length"]["weight"], None)]
        + [(f"contains {w!r}", v, figures["word_t"][w]) for w, v in spec["contains"].items()],
    )
    emit({"bench": "derive_audience", "data": args.data.name, "out": str(args.out),
          **figures, "audience": spec})


if __name__ == "__main__":
    main()
