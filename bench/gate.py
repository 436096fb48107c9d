"""The rollout gate on simulated candidates: how often it is wrong, how soon it decides, and
what its evidence costs, for each candidate traffic floor, with and without the floor for
the texts the candidate is compared with, and for each expected-loss tolerance.

The closed loop (``bench/closed_loop.py``) checks every gate decision against the simulator's
truth, but five seeds give a dozen decisions. This bench gives the gate thousands, with the
production pieces and no model: each trial is a training cycle's aftermath on ``--campaigns``
campaigns, each holding

- the incumbent's proven texts (``--proven`` of them, true CTR around ``--proven-ctr``, each
  with ``--history`` impressions of evidence already),
- the incumbent's texts of the same cycle (``--new-texts``, 4, around ``--base-ctr``) and
- as many of the candidate's (around ``--base-ctr`` times one plus the trial's nominal lift),

every text's true CTR spread by a log-normal factor (``--spread``). Traffic is served as the
allocator serves it: Thompson propensities (``win_probabilities``, ``propensity_samples``
draws) refreshed every ``--batch`` impressions, under the candidate's cap and floor
(``apply_controls``), the same-cycle texts getting that floor too (``control``, as the
allocator serves them) or not (``control_floor`` false: how the gate was fed before). The
gate runs every ``gate_every`` impressions (``gate_interval_s`` of a ``train_interval_s``
round of ``--round`` impressions) with its production rule
(``Comparison.prob_better``, ``Comparison.expected_loss`` and ``decide``, ``promote_prob``,
``rollback_prob``, ``gate_max_impressions`` and ``gate_loss_tolerance``, which each run sets
from ``--tolerances``) until it decides or ``--rounds`` rounds have passed.

A decision is wrong when it promotes a candidate whose texts' mean true CTR is below the
same-cycle texts' or rolls back one above them (the closed loop's ``gate_errors``);
``wrong_beyond_5pct`` counts only those where the truth differs by more than 5%. ``cost``
is the clicks the candidate's share gave up while it was before the gate (until the
decision or the horizon): its impressions times the rate the rest of the traffic earned in
the same batches, less its own expected clicks; ``regret`` is the true rate the decisions
gave up (a wrong promotion's shortfall or a wrong rollback's forgone gain, relative to the
same-cycle texts, 0 when right), summed over the trials. Per floor (``--floors``, the cap
staying at ``candidate_traffic_cap``), per ``control_floor`` (``--control-floor``) and per
tolerance: decisions, errors, undecided trials, the share decided within one round, traffic
to a decision, mean cost, regret and the promotion rate per bin of true lift.

    python bench/gate.py [--trials 48] [--floors 0.05] [--tolerances 0,0.005,0.01,0.02]
                         [--control-floor yes,no] [--spread 0.2] [--new-texts 4] [--seed 0]
                         [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from _report import emit, table  # bench/_report.py, beside this script
from numpy.typing import NDArray
from tqdm import tqdm

from adgen.bandit.controls import Controls, apply_controls
from adgen.bandit.thompson import win_probabilities
from adgen.loop import gate_every
from adgen.model.comparison import Comparison
from adgen.settings import Settings
from adgen.training.gate import decide
from adgen.vocabulary import Decision

#: Nominal lifts of the candidate's texts over the same-cycle texts; trials cycle through them.
LIFTS = (-0.3, -0.2, -0.1, -0.05, 0.05, 0.1, 0.2, 0.3)
#: Bounds of the true-lift bins the promotion rate is reported in.
BINS = (-0.15, -0.05, 0.0, 0.05, 0.15)


@dataclass(frozen=True)
class World:
    """The true CTRs of one trial: ``rates`` (campaigns x arms: ``proven``, then ``new``
    same-cycle texts, then ``new`` of the candidate's)."""

    lift: float
    rates: NDArray[np.float64]
    proven: int
    new: int

    @property
    def candidate(self) -> slice:
        """The candidate's arms."""
        return slice(self.proven + self.new, None)

    @property
    def same_cycle(self) -> slice:
        """The incumbent's texts of the candidate's cycle."""
        return slice(self.proven, self.proven + self.new)

    def truly_better(self) -> tuple[bool, float]:
        """Whether the candidate's texts truly beat the same-cycle ones, and by how much."""
        cand = float(self.rates[:, self.candidate].mean())
        inc = float(self.rates[:, self.same_cycle].mean())
        return cand > inc, cand / inc - 1.0


@dataclass
class Trial:
    """One candidate before the gate: its world, evidence so far and outcome."""

    world: World
    successes: NDArray[np.float64]
    trials: NDArray[np.float64]
    decision: Decision = Decision.CONTINUE
    traffic: int = 0
    cost: float = 0.0


def make_world(lift: float, args: argparse.Namespace, rng: np.random.Generator) -> World:
    """Draw one trial's true CTRs."""
    shape = (args.campaigns, args.proven + 2 * args.new_texts)
    centre = np.concatenate(
        [
            np.full(args.proven, args.proven_ctr),
            np.full(args.new_texts, args.base_ctr),
            np.full(args.new_texts, args.base_ctr * (1.0 + lift)),
        ]
    )
    spread = np.exp(args.spread * rng.standard_normal(shape) - args.spread**2 / 2)
    return World(lift, np.clip(centre * spread, 1e-4, 0.5), args.proven, args.new_texts)


def start(world: World, history: int, rng: np.random.Generator) -> Trial:
    """A trial whose proven texts carry ``history`` impressions each, the new ones none."""
    trials = np.zeros_like(world.rates)
    trials[:, : world.proven] = history
    successes = rng.binomial(trials.astype(np.int64), world.rates).astype(np.float64)
    return Trial(world, successes, trials)


def comparison(trial: Trial) -> Comparison:
    """The gate's evidence: the served candidate and same-cycle arms of every campaign."""
    w = trial.world

    def arms(side: slice) -> list[tuple[int, int]]:
        s, n = trial.successes[:, side].ravel(), trial.trials[:, side].ravel()
        return [(int(a), int(b)) for a, b in zip(s, n, strict=True) if b > 0]

    campaigns = list(range(w.rates.shape[0]))
    return Comparison(
        campaigns, arms(w.candidate), arms(w.same_cycle), "incumbent_rollout", datetime.now(UTC)
    )


def serve(
    live: list[Trial],
    batch: int,
    controls: Controls,
    samples: int,
    rng: np.random.Generator,
) -> None:
    """One refresh interval: ``batch`` impressions per campaign of every live trial."""
    succ = np.stack([t.successes for t in live])
    tri = np.stack([t.trials for t in live])
    base = win_probabilities(succ, tri, rng, samples)
    for k, t in enumerate(live):
        rates, cand = t.world.rates, t.world.candidate
        for c in range(rates.shape[0]):
            p = apply_controls(base[k, c], controls)
            n = rng.multinomial(batch, p / p.sum()).astype(np.float64)
            t.trials[c] += n
            t.successes[c] += rng.binomial(n.astype(np.int64), rates[c])
            rest = n.copy()
            rest[cand] = 0.0
            rest_rate = float(rest @ rates[c]) / max(float(rest.sum()), 1.0)
            t.cost += float(n[cand].sum()) * rest_rate - float(n[cand] @ rates[c][cand])
        t.traffic += batch * rates.shape[0]


def run_floor(
    floor: float, control_floor: bool, args: argparse.Namespace, settings: Settings
) -> list[Trial]:
    """Every trial at this candidate floor, with or without the floor for the same-cycle
    texts, under the gate's ``settings``; the same worlds and seeds for every run."""
    rng = np.random.default_rng(args.seed)
    worlds = [make_world(LIFTS[i % len(LIFTS)], args, rng) for i in range(args.trials)]
    trials = [start(w, args.history, rng) for w in worlds]
    controls = Controls(
        cap=settings.candidate_traffic_cap,
        guaranteed=floor,
        capped=tuple(range(args.proven + args.new_texts, args.proven + 2 * args.new_texts)),
        control=tuple(range(args.proven, args.proven + args.new_texts)) if control_floor else (),
    )
    every = gate_every(settings, args.round) or args.round
    horizon = args.rounds * args.round
    per_batch = args.batch * args.campaigns
    next_gate = every
    served = 0
    label = f"floor {floor:g}" + (" +control" if control_floor else "")
    label += f" tol {settings.gate_loss_tolerance:g}"
    with tqdm(total=horizon, desc=label, unit="imp", leave=False) as bar:
        while served < horizon:
            live = [t for t in trials if t.decision == Decision.CONTINUE]
            if not live:
                break
            serve(live, args.batch, controls, settings.propensity_samples, rng)
            served += per_batch
            bar.update(per_batch)
            if served >= next_gate:
                next_gate += every
                for t in live:
                    gate_pass(t, settings)
    return trials


def gate_pass(trial: Trial, settings: Settings) -> None:
    """The gate's production rule on the trial's evidence so far."""
    comp = comparison(trial)
    verdict = decide(comp.prob_better, comp.expected_loss, comp.candidate.trials, settings)
    trial.decision = verdict.decision


def summarise(
    floor: float,
    control_floor: bool,
    tolerance: float,
    trials: list[Trial],
    round_impressions: int,
) -> dict[str, Any]:
    """One run's figures over its trials (the cost over all, decided or not)."""
    decided = [t for t in trials if t.decision != Decision.CONTINUE]
    wrong = [t for t in decided if wrong_decision(t)]
    cand_imps = [float(t.trials[:, t.world.candidate].sum()) for t in decided]
    truth = [t.world.truly_better()[1] for t in trials]
    bins = np.digitize(truth, BINS)
    by_lift = {
        label: promote_rate([t for t, b in zip(trials, bins, strict=True) if b == i])
        for i, label in enumerate(bin_labels())
    }
    return {
        "floor": floor,
        "control_floor": control_floor,
        "tolerance": tolerance,
        "trials": len(trials),
        "decisions": len(decided),
        "undecided": len(trials) - len(decided),
        "wrong": len(wrong),
        "wrong_rate": len(wrong) / len(decided) if decided else None,
        "wrong_beyond_5pct": sum(abs(t.world.truly_better()[1]) > 0.05 for t in wrong),
        "median_traffic_to_decision": median([float(t.traffic) for t in decided]),
        "median_candidate_impressions": median(cand_imps),
        "decided_within_a_round": sum(t.traffic <= round_impressions for t in decided)
        / len(trials),
        "mean_cost_clicks": statistics.fmean(t.cost for t in trials),
        "regret": sum(abs(t.world.truly_better()[1]) for t in wrong),
        "promote_rate_by_true_lift": by_lift,
    }


def bin_labels() -> list[str]:
    """Names of the true-lift bins: "< -15%", "-15% to -5%", ..., ">= +15%"."""
    inner = [f"{lo:+.0%} to {hi:+.0%}" for lo, hi in zip(BINS, BINS[1:], strict=False)]
    return [f"< {BINS[0]:+.0%}", *inner, f">= {BINS[-1]:+.0%}"]


def wrong_decision(trial: Trial) -> bool:
    """Promoted a truly worse candidate or rolled back a truly better one."""
    better, _ = trial.world.truly_better()
    return (trial.decision == Decision.PROMOTE) != better


def promote_rate(trials: list[Trial]) -> float | None:
    """Share of the decided trials that promoted."""
    decided = [t for t in trials if t.decision != Decision.CONTINUE]
    if not decided:
        return None
    return sum(t.decision == Decision.PROMOTE for t in decided) / len(decided)


def median(values: list[float]) -> float | None:
    """The median, or None without values."""
    return statistics.median(values) if values else None


def parse_args() -> argparse.Namespace:
    """The command line (``--quick``: 16 trials, floor 0.05 with and without the control
    floor, tolerances 0 and the production one, 2 rounds)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=48, help="per run (lifts cycle)")
    parser.add_argument("--floors", default="0.05", help="candidate traffic floors")
    parser.add_argument(
        "--tolerances", default="0,0.005,0.01,0.02", help="gate_loss_tolerance values"
    )
    parser.add_argument(
        "--control-floor", default="yes", help="yes, no or yes,no: the same-cycle texts' floor"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--campaigns", type=int, default=3)
    parser.add_argument("--proven", type=int, default=4, help="proven texts per campaign")
    parser.add_argument("--history", type=int, default=5_000, help="impressions per proven text")
    parser.add_argument("--proven-ctr", type=float, default=0.047)
    parser.add_argument("--base-ctr", type=float, default=0.035)
    parser.add_argument("--spread", type=float, default=0.2, help="log-normal sigma per text")
    parser.add_argument(
        "--new-texts", type=int, default=4, help="texts per campaign the candidate and the "
        "same-cycle side each have (ADGEN_ROLLOUT_VARIANTS, before guardrail rejections)"
    )
    parser.add_argument("--round", type=int, default=100_000, help="impressions per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds before giving up")
    parser.add_argument("--batch", type=int, default=333, help="per campaign per refresh")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.floors, args.rounds = 16, "0.05", 2
        args.tolerances = f"0,{Settings().gate_loss_tolerance}"
        args.control_floor = "yes,no"
    args.floors = [float(f) for f in args.floors.split(",")]
    try:
        args.tolerances = [float(t) for t in args.tolerances.split(",")]
    except ValueError as err:
        parser.error(f"--tolerances takes numbers separated by commas: {err}")
    if any(not 0 <= t < 1 for t in args.tolerances):
        parser.error(f"--tolerances must each be in [0, 1), not {args.tolerances}")
    if args.new_texts < 1:
        parser.error(f"--new-texts must be at least 1, not {args.new_texts}")
    choices = {"yes": True, "no": False}
    try:
        args.control_floor = [choices[c] for c in args.control_floor.split(",")]
    except KeyError as err:
        parser.error(f"--control-floor takes yes, no or yes,no, not {err.args[0]!r}")
    return args


def main() -> None:
    """Run every floor, control floor and tolerance on the same trials; print the tables and
    the JSON line."""
    args = parse_args()
    settings = Settings()
    began = time.perf_counter()
    results = [
        summarise(
            f,
            control,
            tol,
            run_floor(f, control, args, settings.model_copy(update={"gate_loss_tolerance": tol})),
            args.round,
        )
        for f in args.floors
        for control in args.control_floor
        for tol in args.tolerances
    ]
    seconds = time.perf_counter() - began
    table(
        f"the gate on {args.trials} simulated candidates per run (cap "
        f"{settings.candidate_traffic_cap:g}, P {settings.rollback_prob:g}/"
        f"{settings.promote_prob:g}, undecided at "
        f"{settings.gate_max_impressions:,} rolled back); {seconds:.0f} s",
        ["floor", "control floor", "tolerance", "decided", "undecided", "wrong", "wrong >5%",
         "regret", "within a round", "traffic to decision", "candidate impressions",
         "cost (clicks)"],
        [
            (r["floor"], r["control_floor"], r["tolerance"], r["decisions"], r["undecided"],
             r["wrong"], r["wrong_beyond_5pct"], r["regret"], r["decided_within_a_round"],
             r["median_traffic_to_decision"], r["median_candidate_impressions"],
             r["mean_cost_clicks"])
            for r in results
        ],
    )
    table(
        "share promoted among decided trials, by the candidate's true lift over the same-cycle "
        "texts",
        ["floor", "control floor", "tolerance", *bin_labels()],
        [(r["floor"], r["control_floor"], r["tolerance"], *r["promote_rate_by_true_lift"].values())
         for r in results],
    )
    emit(
        {
            "bench": "gate",
            "trials": args.trials,
            "seed": args.seed,
            "spread": args.spread,
            "new_texts": args.new_texts,
            "rounds": args.rounds,
            "round_impressions": args.round,
            "settings": {
                "cap": settings.candidate_traffic_cap,
                "promote_prob": settings.promote_prob,
                "rollback_prob": settings.rollback_prob,
                "gate_max_impressions": settings.gate_max_impressions,
                "gate_every": gate_every(settings, args.round),
            },
            "results": results,
            "seconds": round(seconds, 1),
        }
    )


if __name__ == "__main__":
    main()
