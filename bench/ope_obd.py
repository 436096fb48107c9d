"""Off-policy evaluation on real logs: the Open Bandit Dataset sample (ZOZOTOWN).

As in the Open Bandit Pipeline paper: estimate the CTR of ZOZOTOWN's Bernoulli Thompson
sampling policy (BTS) from the log of the uniform random policy, with adgen's IPW, SNIPW
and DR estimators (:mod:`adgen.ope`), and compare with BTS's own observed CTR on its own
log (the on-policy truth). BTS shows three items per impression (positions 1-3); its
action distribution per position is computed by Monte Carlo from the Beta prior it ran
with (``data/obd/prior_bts_all.json``), exactly as OBP's ``compute_batch_action_dist``
does; each logged round is then evaluated at its own position.

The sample (10,000 rounds per policy) is vendored under ``data/obd/`` (see its README for
source, licence and attribution).

    python bench/ope_obd.py [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from _report import emit, table  # bench/_report.py, beside this script

from adgen.ope import LoggedData, estimate, observed_mean

DATA = Path(__file__).resolve().parents[1] / "data" / "obd"
LEN_LIST = 3


def read_log(name: str) -> dict[str, np.ndarray]:
    """A vendored log as arrays: action, position (0-based), reward, pscore."""
    with (DATA / f"{name}_all.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {
        "action": np.array([int(r["item_id"]) for r in rows]),
        "position": np.array([int(r["position"]) - 1 for r in rows]),
        "reward": np.array([float(r["click"]) for r in rows]),
        "pscore": np.array([float(r["propensity_score"]) for r in rows]),
    }


def bts_action_dist(n_sim: int, rng: np.random.Generator) -> np.ndarray:
    """P(item a is shown at position k) under BTS's prior, shape (n_actions, LEN_LIST):
    the top ``LEN_LIST`` items of one Beta draw per item, counted over ``n_sim`` draws."""
    prior = json.loads((DATA / "prior_bts_all.json").read_text())
    alpha, beta = np.asarray(prior["alpha"]), np.asarray(prior["beta"])
    counts = np.zeros((alpha.size, LEN_LIST))
    for start in range(0, n_sim, 10_000):
        draws = rng.beta(alpha, beta, size=(min(10_000, n_sim - start), alpha.size))
        top = np.argsort(-draws, axis=1)[:, :LEN_LIST]
        for k in range(LEN_LIST):
            counts[:, k] += np.bincount(top[:, k], minlength=alpha.size)
    return counts / n_sim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer simulations and resamples")
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n_sim, n_boot = (20_000, 100) if args.quick else (100_000, 1000)

    random_log, bts_log = read_log("random"), read_log("bts")
    per_position = bts_action_dist(n_sim, rng)
    data = LoggedData.build(
        random_log["action"], random_log["reward"], random_log["pscore"],
        per_position.T[random_log["position"]],  # each round at its own position
    )
    truth = observed_mean(bts_log["reward"], rng, n_boot)
    logged = observed_mean(random_log["reward"], rng, n_boot)
    estimates = estimate(data, rng, n_bootstrap=n_boot)
    errors = {e.name: abs(e.value - truth.value) / truth.value for e in estimates}
    rows = [
        ["random (logging, observed)", logged.value, logged.ci95_low, logged.ci95_high, None],
        ["BTS (on-policy truth)", truth.value, truth.ci95_low, truth.ci95_high, None],
    ] + [
        [f"BTS by {e.name.upper()}", e.value, e.ci95_low, e.ci95_high, errors[e.name]]
        for e in estimates
    ]
    table(
        f"Open Bandit Dataset (all): BTS's CTR estimated from the random log "
        f"({data.n_rounds:,} rounds)",
        ["policy / estimator", "CTR", "95% low", "95% high", "relative error"],
        rows,
    )
    emit({
        "bench": "ope_obd",
        "n_rounds": data.n_rounds,
        "n_actions": data.n_actions,
        "ground_truth_ctr": truth.value,
        "logging_ctr": logged.value,
        "estimates": {e.name: e.value for e in estimates},
        "ci95": {e.name: [e.ci95_low, e.ci95_high] for e in estimates},
        "relative_error": errors,
        "quick": args.quick,
        "seed": args.seed,
    })


if __name__ == "__main__":
    main()
