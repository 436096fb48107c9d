"""Lift of the closed loop: does retraining make what the loop serves truly better?

For each seed (``--seeds 0,1,2``) two arms run the real loop (``adgen.loop.ClosedLoop``:
SQLite, the embedded broker, the bundled model, simulated traffic through Kafka, the
trainer's scheduled job each round) on the same traffic seeds and the same training briefs
(the first ``--train-briefs`` of ``adgen/data/briefs_en.json``):

- with training: the production loop (reward model, DPO, the candidate's rollout beside
  the serving version's best-of-N, the gate with its production settings: an undecided
  candidate keeps serving its capped share, and cycles meanwhile only refresh);
- no retraining: the same loop with ``train_policy`` off (``ADGEN_TRAIN_POLICY=false``):
  each cycle still fits the reward model and lets the base version write best-of-N
  variants ranked by it, but no DPO update and no new version.

Each arm's realized CTR of the served traffic per round is the business figure. Then each
version is measured on the evaluation briefs: ``--samples`` texts per brief, the share that
passes the guardrails (acceptance) and the mean hidden true CTR of those, plain or with the
reward-model selection a rollout applies (``rollout_variants`` of ``rollout_best_of``). Lifts
are over the base model's plain samples of the same seed:

- ``lift``: the final version of the training arm as it serves (its reward model's best);
- ``policy_lift``: the same version's plain samples (what the weight updates did);
- ``served_lift``: ``lift`` counting rejected samples as zero (acceptance × CTR);
- ``no_retrain_lift``: the base model as the no-retraining arm serves at the end (its own
  reward model's best);
- ``rm_only_lift``: the base model's samples, best by the training arm's reward model;
- ``unseen_brief_lift``: ``lift`` on the ``--heldout`` last briefs, never trained on;
- ``realized_lift``: realized CTR over all rounds, training arm over no-retraining arm;
- ``last_round_realized_lift``: the same in the last round only;
- ``last_round_expected_lift``: the same with each served variant's true CTR in place of
  its clicks (``expected_ctr_by_round``): what the allocation earned, without the noise of
  the click draws;
- ``lift_over_rm_only``: the final version as served over the base model's samples with the
  same reward-model selection (what the weight updates add to selection alone).

``claims`` says whether the two things the loop must show hold: the last round's realized
CTR beats the no-retraining arm's, and the final version beats reward-model selection
alone, each only when the low end of its 95% interval over seeds is above zero (``null``
from one seed).

Every lift comes as the mean over seeds and a 95% t-interval (``*_ci``). The simulator
knows each candidate's true CTR (the mean over its served variants, against that of the
incumbent's texts the gate compared it with: those written in the same cycle), so every
gate decision is checked: ``gate_errors`` counts
promotions of truly worse and rollbacks of truly better candidates, and the impressions
each decision took.

    python bench/closed_loop.py --audience FILE --rounds N --seeds 0,1,2 [--torch-threads 1]
                                [--record FILE] [--quick]

A seed takes tens of minutes on a small CPU. With ``--record FILE`` each finished seed is
appended to FILE (one JSON line: the protocol and both arms), and seeds FILE already holds
under the same protocol (the arguments, and any ``ADGEN_*`` setting the environment
changes, such as ``ADGEN_CANDIDATE_TRAFFIC_FLOOR``) are read back instead of run again: a run
that stops loses only the seed in progress, and processes given different ``--seeds`` and
the same FILE share the work; a last call with every seed then reports them all.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _measure import Samples, bench_parser, finite, mean_ci, mean_of, over, sample_model, true_ctr
from _report import emit, table  # bench/_report.py, beside this script
from sqlalchemy import select

from adgen.audience import Audience, load_audience
from adgen.brief import Brief
from adgen.db.models import ArmStats, GateDecision, ModelVersion, Variant
from adgen.loop import BRIEFS_EN, SERVED_GROUPS, ClosedLoop, DemoConfig, load_briefs
from adgen.model.versions import active_version
from adgen.reward.training import load_active
from adgen.settings import Settings
from adgen.vocabulary import Decision, VersionStatus

LIFTS = (
    "lift",
    "policy_lift",
    "served_lift",
    "no_retrain_lift",
    "rm_only_lift",
    "unseen_brief_lift",
    "realized_lift",
    "last_round_realized_lift",
    "last_round_expected_lift",
    "lift_over_rm_only",
)
#: What the loop must show to claim it learns, each by the low end of an interval over seeds.
CLAIMS = {
    "last_round_beats_no_retraining": "last_round_realized_lift",
    "final_beats_rm_selection_alone": "lift_over_rm_only",
}


@dataclass
class Arm:
    """One arm of one seed: realized CTR per round, the measured versions, phase seconds."""

    realized_ctr: list[float]
    measured: dict[str, float]
    versions: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    undecided: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    expected_ctr: list[float] = field(default_factory=list)
    """The served variants' true CTR per round (no click draws; empty in older records)."""
    groups: list[dict[str, list[float]]] = field(default_factory=list)
    """Per round, group → [impressions, true CTR] (``adgen.loop.served_groups``; empty in
    older records)."""


def sample(
    loop: ClosedLoop, version: ModelVersion, briefs: Sequence[Brief], n: int, seed: int
) -> Samples:
    """``n`` texts of ``version`` per brief (``sample_model``)."""
    loaded = loop.registry.load(version)
    with loaded.activated() as model:
        return sample_model(
            model, loaded.tokenizer, briefs, n, seed, loop.settings, loop.registry.guardrails
        )


def served_ctrs(
    loop: ClosedLoop, version_id: int, rollout_of: int | None = None
) -> dict[int, list[float]]:
    """campaign -> the true CTR of each of ``version_id``'s variants that was served there
    (only those written beside candidate ``rollout_of``'s rollout, when given)."""
    where = [Variant.model_version_id == version_id, ArmStats.impressions > 0]
    if rollout_of is not None:
        where.append(Variant.rollout_of == rollout_of)
    with loop.sessions() as s:
        rows = s.execute(
            select(Variant.text, Variant.campaign_id)
            .join(ArmStats, ArmStats.variant_id == Variant.id)
            .where(*where)
        ).all()
    briefs = dict(zip(loop.campaign_ids, loop.briefs, strict=True))
    out: dict[int, list[float]] = defaultdict(list)
    for text, cid in rows:
        out[cid].append(loop.audience.true_ctr(text, briefs[cid].brand, briefs[cid].locale))
    return out


def gate_record(loop: ClosedLoop) -> tuple[list[dict[str, Any]], int]:
    """Each gate decision beside the truth (mean true CTR of the candidate's served variants
    and of the incumbent's on the same campaigns, those the gate compared it with: the ones
    written beside the candidate when its basis was ``incumbent_rollout``), with how many
    texts each side had and how far their true CTRs spread, and the candidates left
    undecided."""
    with loop.sessions() as s:
        rows = s.scalars(
            select(GateDecision)
            .where(GateDecision.decision.in_([Decision.PROMOTE, Decision.ROLLBACK]))
            .order_by(GateDecision.id)
        ).all()
        candidate = ModelVersion.status == VersionStatus.CANDIDATE
        undecided = len(s.scalars(select(ModelVersion).where(candidate)).all())
    out = []
    for r in rows:
        cand = served_ctrs(loop, r.candidate_version_id)
        beside = r.candidate_version_id if r.details.get("basis") == "incumbent_rollout" else None
        inc = served_ctrs(loop, r.incumbent_version_id, beside) if r.incumbent_version_id else {}
        beside_cand = {c: inc.get(c, []) for c in cand}
        cand_ctr = mean_of([x for xs in cand.values() for x in xs])
        inc_ctr = mean_of([x for xs in beside_cand.values() for x in xs])
        out.append(
            decision_record(r, cand_ctr, inc_ctr)
            | {
                "candidate_texts": sum(map(len, cand.values())),
                "incumbent_texts": sum(map(len, beside_cand.values())),
                "text_spread": text_spread(cand, beside_cand),
            }
        )
    return out, undecided


def text_spread(*sides: dict[int, list[float]]) -> float | None:
    """The spread of the texts' true CTRs that the gate averaged: the standard deviation of
    log true CTR about each side's mean per campaign, pooled (what ``bench/gate.py
    --spread`` draws); None when no side has two texts in a campaign."""
    squares, dof = 0.0, 0
    for side in sides:
        for ctrs in side.values():
            if len(ctrs) > 1:
                logs = np.log(ctrs)
                squares += float(np.sum((logs - logs.mean()) ** 2))
                dof += len(ctrs) - 1
    return math.sqrt(squares / dof) if dof else None


def decision_record(row: GateDecision, cand_ctr: float, inc_ctr: float) -> dict[str, Any]:
    """One gate decision as recorded: what was decided, on how much evidence and why, beside
    the truth; wrong when it promoted texts truly worse or rolled back texts truly better."""
    wrong = (row.decision == Decision.PROMOTE and cand_ctr < inc_ctr) or (
        row.decision == Decision.ROLLBACK and cand_ctr > inc_ctr
    )
    return {
        "candidate": row.candidate_version_id,
        "decision": row.decision,
        "impressions": row.candidate_impressions,
        "prob_better": row.prob_better,
        "reason": row.details.get("reason"),
        "candidate_true_ctr": cand_ctr,
        "incumbent_true_ctr": inc_ctr,
        "wrong": bool(wrong),
    }


def measure(
    loop: ClosedLoop,
    briefs: Sequence[Brief],
    heldout: Sequence[Brief],
    args: argparse.Namespace,
    seed: int,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """True CTR and acceptance of the base, each round's version and the final version on
    the training briefs, and the final version against the base on the held-out briefs."""
    settings, audience = loop.settings, loop.audience
    with loop.sessions() as s:
        versions = {v.id: v for v in s.scalars(select(ModelVersion).order_by(ModelVersion.id))}
        base = next(v for v in versions.values() if v.parent_id is None)
        final_id = active_version(s, base.base_model).id
        reward_model = load_active(s, settings)
    made = [c for r in loop.rounds for c in r.candidates]
    cache: dict[int, Samples] = {}
    for vid in dict.fromkeys([base.id, *made, final_id]):
        cache[vid] = sample(loop, versions[vid], briefs, args.samples, seed)
    rows = [
        {
            "version": vid,
            "acceptance": got.acceptance,
            "true_ctr": true_ctr(audience, got, briefs, settings),
            "served_true_ctr": true_ctr(audience, got, briefs, settings, reward_model),
        }
        for vid, got in cache.items()
    ]
    final, first = cache[final_id], cache[base.id]
    unseen_base = sample(loop, base, heldout, args.samples, seed + 100)
    unseen_final = (
        unseen_base
        if final_id == base.id
        else sample(loop, versions[final_id], heldout, args.samples, seed + 100)
    )
    measured = {
        "base_true_ctr": true_ctr(audience, first, briefs, settings),
        "base_acceptance": first.acceptance,
        "final_true_ctr": true_ctr(audience, final, briefs, settings),
        "final_served_true_ctr": true_ctr(audience, final, briefs, settings, reward_model),
        "final_acceptance": final.acceptance,
        "rm_only_true_ctr": true_ctr(audience, first, briefs, settings, reward_model),
        "unseen_base_true_ctr": true_ctr(audience, unseen_base, heldout, settings),
        "unseen_final_true_ctr": true_ctr(audience, unseen_final, heldout, settings, reward_model),
    }
    for row in rows:
        row["final"] = row["version"] == final_id
    return measured, rows


def arm_settings(
    args: argparse.Namespace, var_dir: Path, seed: int, train_policy: bool
) -> dict[str, Any]:
    """The settings an arm sets itself, whatever the environment says."""
    update: dict[str, Any] = {
        "var_dir": var_dir,
        "database_url": None,
        "kafka_bootstrap": None,
        "train_locales": ["en"],
        "gen_seed": seed,
        "ingest_session_timeout_ms": 6000,
        "train_steps": args.train_steps,
        "train_policy": train_policy,
        "torch_threads": args.torch_threads,
    }
    if args.quick:
        update |= {"rm_samples": 8, "rollout_best_of": 4}
    return update


def run_arm(
    args: argparse.Namespace,
    audience: Audience,
    briefs: Sequence[Brief],
    heldout: Sequence[Brief],
    seed: int,
    train_policy: bool,
) -> Arm:
    """One arm of one seed: the loop's rounds, then the measurements."""
    with tempfile.TemporaryDirectory(prefix="adgen-closed-loop-") as tmp:
        settings = Settings().model_copy(update=arm_settings(args, Path(tmp), seed, train_policy))
        config = DemoConfig(
            rounds=args.rounds,
            impressions_per_round=args.impressions,
            seed=seed,
            decide_in_one_round=False,
        )
        seconds: dict[str, float] = defaultdict(float)
        with ClosedLoop(settings, audience, config, briefs) as loop:
            began = time.perf_counter()
            loop.setup()
            seconds["setup"] = time.perf_counter() - began
            for r in range(1, args.rounds + 1):
                report = loop.run_round(r)
                for phase, s in report.seconds.items():
                    seconds[phase] += s
                arm = "training" if train_policy else "no retraining"
                said = "; ".join(report.training) or "no cycle"
                print(f"seed {seed}, {arm}, round {r}: {said}", flush=True)
            began = time.perf_counter()
            measured, versions = measure(loop, briefs, heldout, args, seed)
            decisions, undecided = gate_record(loop)
            seconds["evaluation"] = time.perf_counter() - began
            realized = [r.served_ctr for r in loop.rounds]
            expected = [r.expected_ctr for r in loop.rounds]
            groups = [r.groups for r in loop.rounds]
    return Arm(realized, measured, versions, decisions, undecided, dict(seconds), expected, groups)


#: What must match for a recorded seed to be reused: the arguments that change its figures.
PROTOCOL = ("rounds", "impressions", "samples", "train_briefs", "heldout", "train_steps", "quick")


#: Settings that say where the loop runs, not what it does (``arm_settings`` adds its own).
WHERE_IT_RUNS = frozenset({
    "cache_dir", "artifact_store", "events_topic", "consumer_group", "admin_token",
    "token_secret", "api_host", "api_port", "spool_dir", "ingest_metrics_port",
})


def protocol_of(
    args: argparse.Namespace, audience: Audience, settings: Settings | None = None
) -> dict[str, Any]:
    """The protocol a seed ran under, as recorded beside it: the arguments, and the settings
    the environment changed (``ADGEN_*``; recorded only when there are any, so a record of
    the defaults stays what it was), lest a run under, say, another candidate floor be read
    back as one under the defaults."""
    changed = settings if settings is not None else Settings()
    ignored = WHERE_IT_RUNS | arm_settings(args, Path(), 0, True).keys()
    overrides = changed.model_dump(mode="json", include=changed.model_fields_set - ignored)
    protocol = {"audience": audience.name, **{k: getattr(args, k) for k in PROTOCOL}}
    return protocol | ({"settings": overrides} if overrides else {})


def recorded_seeds(path: Path | None, protocol: dict[str, Any]) -> dict[int, tuple[Arm, Arm]]:
    """Seeds ``path`` holds under ``protocol`` (the last record of a seed wins)."""
    if path is None or not path.exists():
        return {}
    out: dict[int, tuple[Arm, Arm]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if record["protocol"] != protocol:
                continue
            out[int(record["seed"])] = (Arm(**record["training"]), Arm(**record["no_retraining"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}:{number}: not a closed-loop seed record ({exc})") from exc
    return out


def code_version() -> str | None:
    """``git describe --always --dirty`` of the code that ran; None outside a checkout."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def record_seed(path: Path, protocol: dict[str, Any], seed: int, arms: tuple[Arm, Arm]) -> None:
    """Append one finished seed to ``path``, with the version of the code that ran it (kept
    for the reader: a record is reused whatever code wrote it)."""
    line = {
        "protocol": protocol,
        "seed": seed,
        "code": code_version(),
        "training": asdict(arms[0]),
        "no_retraining": asdict(arms[1]),
    }
    with path.open("a") as f:
        f.write(json.dumps(line) + "\n")


def run_seeds(
    args: argparse.Namespace,
    audience: Audience,
    briefs: Sequence[Brief],
    heldout: Sequence[Brief],
    protocol: dict[str, Any],
) -> list[tuple[Arm, Arm]]:
    """Both arms of every seed under ``protocol``, read back from ``--record`` where it holds
    them."""
    done = recorded_seeds(args.record, protocol)
    if done:
        print(f"seeds {sorted(done)} read back from {args.record}", flush=True)
    arms = []
    for seed in args.seeds:
        if seed not in done:
            done[seed] = (
                run_arm(args, audience, briefs, heldout, seed, train_policy=True),
                run_arm(args, audience, briefs, heldout, seed, train_policy=False),
            )
            if args.record is not None:
                record_seed(args.record, protocol, seed, done[seed])
        arms.append(done[seed])
    return arms


def lifts(trained: Arm, fixed: Arm) -> dict[str, float]:
    """One seed's lifts (see the module docstring); NaN where a figure is missing."""
    m, base = trained.measured, trained.measured["base_true_ctr"]
    return {
        "lift": over(m["final_served_true_ctr"], base),
        "policy_lift": over(m["final_true_ctr"], base),
        "served_lift": over(
            m["final_served_true_ctr"] * m["final_acceptance"], base * m["base_acceptance"]
        ),
        "no_retrain_lift": over(fixed.measured["final_served_true_ctr"], base),
        "rm_only_lift": over(m["rm_only_true_ctr"], base),
        "unseen_brief_lift": over(m["unseen_final_true_ctr"], m["unseen_base_true_ctr"]),
        "realized_lift": over(
            float(np.mean(trained.realized_ctr)), float(np.mean(fixed.realized_ctr))
        ),
        "last_round_realized_lift": over(trained.realized_ctr[-1], fixed.realized_ctr[-1]),
        "last_round_expected_lift": (
            over(trained.expected_ctr[-1], fixed.expected_ctr[-1])
            if trained.expected_ctr and fixed.expected_ctr
            else math.nan
        ),
        "lift_over_rm_only": over(m["final_served_true_ctr"], m["rm_only_true_ctr"]),
    }


def group_figures(arms: Sequence[Arm]) -> list[dict[str, dict[str, float | None]]]:
    """Per round, each group's share of the traffic and its true CTR per impression, means
    over the seeds (a seed where the group served nothing counts as share 0 and no CTR);
    empty when any record lacks the groups."""
    if not arms or not all(a.groups for a in arms):
        return []
    out = []
    for rnd in zip(*(a.groups for a in arms), strict=True):
        figures: dict[str, dict[str, float | None]] = {}
        for group in SERVED_GROUPS:
            shares = [
                g[group][0] / sum(n for n, _ in g.values()) if group in g else 0.0 for g in rnd
            ]
            ctrs = [g[group][1] for g in rnd if group in g]
            if any(shares):
                figures[group] = {
                    "share": statistics.fmean(shares),
                    "expected_ctr": statistics.fmean(ctrs) if ctrs else None,
                }
        out.append(figures)
    return out


def summary(seeds: list[int], arms: list[tuple[Arm, Arm]]) -> dict[str, Any]:
    """The JSON figures over all seeds."""
    per_seed = [lifts(t, f) for t, f in arms]
    out: dict[str, Any] = {"seeds": seeds}
    for key in LIFTS:
        out[key], out[f"{key}_ci"] = mean_ci([p[key] for p in per_seed])
    out["claims"] = {
        claim: None if out[f"{key}_ci"] is None else out[f"{key}_ci"][0] > 0
        for claim, key in CLAIMS.items()
    }
    out["realized_ctr_by_round"] = {
        "training": np.mean([t.realized_ctr for t, _ in arms], axis=0).tolist(),
        "no_retraining": np.mean([f.realized_ctr for _, f in arms], axis=0).tolist(),
    }
    every = all(a.expected_ctr for pair in arms for a in pair)  # older records lack it
    out["expected_ctr_by_round"] = {
        "training": np.mean([t.expected_ctr for t, _ in arms], axis=0).tolist() if every else [],
        "no_retraining": (
            np.mean([f.expected_ctr for _, f in arms], axis=0).tolist() if every else []
        ),
    }
    out["served_groups_by_round"] = {
        "training": group_figures([t for t, _ in arms]),
        "no_retraining": group_figures([f for _, f in arms]),
    }
    out["acceptance_by_version"] = [
        {"seed": s, **v} for s, (t, _) in zip(seeds, arms, strict=True) for v in t.versions
    ]
    decisions = [d for t, _ in arms for d in t.decisions]
    spent = [d["impressions"] for d in decisions]
    spreads = [d["text_spread"] for d in decisions if d.get("text_spread") is not None]
    out["gate_errors"] = {
        "decisions": len(decisions),
        "wrong_promotions": sum(d["wrong"] for d in decisions if d["decision"] == Decision.PROMOTE),
        "wrong_rollbacks": sum(d["wrong"] for d in decisions if d["decision"] == Decision.ROLLBACK),
        "undecided": sum(t.undecided for t, _ in arms),
        "mean_impressions_to_decide": statistics.fmean(spent) if spent else None,
        "impressions_to_decide": spent,
        "median_text_spread": statistics.median(spreads) if spreads else None,
    }
    phases: dict[str, float] = defaultdict(float)
    for arm in (a for pair in arms for a in pair):
        for phase, s in arm.seconds.items():
            phases[phase] += s
    out["seconds_by_phase"] = {k: round(v, 1) for k, v in phases.items()}
    out["per_seed"] = [
        {
            "seed": s,
            **p,
            **{f"training_{k}": v for k, v in t.measured.items()},
            "no_retrain_served_true_ctr": f.measured["final_served_true_ctr"],
            "realized_ctr_training": t.realized_ctr,
            "realized_ctr_no_retraining": f.realized_ctr,
            "gate": t.decisions,
        }
        for s, p, (t, f) in zip(seeds, per_seed, arms, strict=True)
    ]
    return out


def parse_args() -> argparse.Namespace:
    """The command line (``--quick``: 1 round, little traffic, 2 training briefs, 8 samples)."""
    parser = bench_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=None, help="one seed (overrides --seeds)")
    parser.add_argument("--impressions", type=int, default=100_000, help="per round")
    parser.add_argument("--samples", type=int, default=48, help="evaluation samples per brief")
    parser.add_argument("--train-briefs", type=int, default=6, help="briefs the loop runs on")
    parser.add_argument("--heldout", type=int, default=2, help="last briefs, never trained on")
    parser.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="DPO steps per cycle (default: the trainer's own, ADGEN_TRAIN_STEPS; 2 quick)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=None,
        help="JSON-lines file: finished seeds are appended, recorded ones are not rerun",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 round, 1,500 impressions, 2 briefs, 8 samples, best 4 of 4",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.impressions, args.samples, args.train_briefs = 1, 1_500, 8, 2
    args.train_steps = args.train_steps or (2 if args.quick else Settings().train_steps)
    args.seeds = [args.seed] if args.seed is not None else [int(s) for s in args.seeds.split(",")]
    return args


def report(
    args: argparse.Namespace,
    audience: Audience,
    out: dict[str, Any],
    seconds: float,
    overrides: dict[str, Any],
) -> None:
    """The readable tables, then the JSON line (``overrides``: the protocol's settings)."""
    print(
        f"audience {audience.name}; seeds {out['seeds']}; {args.rounds} rounds of "
        f"{args.impressions:,} impressions; {args.train_briefs} training and {args.heldout} "
        f"held-out briefs; {args.samples} samples per brief; "
        + "".join(f"{k} {v}; " for k, v in overrides.items())
        + f"{seconds:.0f} s"
    )
    table(
        "lifts over the base model's samples (mean over seeds, 95% interval)",
        ["figure", "mean", "low", "high"],
        [(k, out[k], *(out[f"{k}_ci"] or [None, None])) for k in LIFTS],
    )
    table(
        "what the loop must show: the low end of the figure's 95% interval above zero",
        ["claim", "figure", "holds"],
        [(claim, key, out["claims"][claim]) for claim, key in CLAIMS.items()],
    )
    realized, expected = out["realized_ctr_by_round"], out["expected_ctr_by_round"]
    rounds = len(realized["training"])
    table(
        "CTR of the served traffic per round, realized and expected (true CTR of the variants "
        "served), mean over seeds",
        ["round", "realized, training", "no retraining", "expected, training", "no retraining"],
        [
            (
                i + 1,
                realized["training"][i],
                realized["no_retraining"][i],
                *(
                    (expected["training"][i], expected["no_retraining"][i])
                    if expected["training"]
                    else (None, None)
                ),
            )
            for i in range(rounds)
        ],
    )
    table(
        "who served each round: a candidate's variants (a version before the gate when the round "
        "began), the serving version's new ones (written by the last cycle) and its older ones; "
        "share of the traffic and true CTR, mean over seeds",
        ["round", "arm", "group", "share", "true CTR"],
        [
            (i + 1, arm, group, g["share"], g["expected_ctr"])
            for arm, per_round in out["served_groups_by_round"].items()
            for i, groups in enumerate(per_round)
            for group, g in groups.items()
        ],
    )
    table(
        "each version on the training briefs",
        ["seed", "version", "acceptance", "true CTR", "as served (RM best)"],
        [
            (v["seed"], f"v{v['version']}", v["acceptance"], v["true_ctr"], v["served_true_ctr"])
            for v in out["acceptance_by_version"]
        ],
    )
    emit(
        finite(
            {
                "bench": "closed_loop",
                "audience": audience.name,
                "rounds": args.rounds,
                "impressions_per_round": args.impressions,
                "samples_per_brief": args.samples,
                "train_steps": args.train_steps,
                "settings": overrides,
                "seconds": round(seconds, 1),
                **out,
            }
        )
    )


def main() -> None:
    args = parse_args()
    audience = load_audience(args.audience)
    every = load_briefs(BRIEFS_EN)
    briefs, heldout = every[: args.train_briefs], every[len(every) - args.heldout :]
    if set(map(id, briefs)) & set(map(id, heldout)):
        raise SystemExit(
            f"--train-briefs {args.train_briefs} overlaps the {args.heldout} held-out briefs"
        )
    protocol = protocol_of(args, audience)
    out = summary(args.seeds, run_seeds(args, audience, briefs, heldout, protocol))
    seconds = sum(out["seconds_by_phase"].values())
    report(args, audience, out, seconds, protocol.get("settings", {}))


if __name__ == "__main__":
    main()
