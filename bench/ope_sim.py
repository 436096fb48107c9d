"""Off-policy evaluation on the simulator, where the truth is known: estimate what a
candidate model version would earn from the incumbent's logs, before it takes the traffic,
then let it take the traffic and compare.

The campaign serves the incumbent version's variants by Thompson sampling (adgen's served
policy, batched refreshes) while the candidate version's variants get the rollout gate's
guaranteed share of traffic (``Controls(capped=..., guaranteed=floor, cap=floor)``, as the
allocator serves a candidate): a log in which the candidate's variants have a known, small
propensity, which is what makes the estimate possible (no estimator can value an action
the logging policy never played). From that log, IPW, SNIPW and DR (:mod:`adgen.ope`)
estimate the policy ``version:N`` of ``adgen ope`` (the candidate's variants, evenly).
Then the candidate serves alone, evenly, for as many impressions, and its observed CTR is
what it earned. Relative errors per estimator, several seeds; the candidate's true mean CTR
(from the audience) is reported beside. Twice: with the default controls (no exploration
share: Thompson sampling inside the candidate's floor soon starves its weaker variants, so
their propensities get tiny and the estimates noisy) and with ``min_exploration`` 0.05
(every variant keeps at least 0.05 / 8 of the traffic), the setting to use when a
campaign's logs are meant for off-policy evaluation.

    python bench/ope_sim.py [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from _report import emit, table  # bench/_report.py, beside this script

from adgen.audience import load_audience
from adgen.bandit import Controls, ThompsonSampling
from adgen.ope import ESTIMATORS, LoggedData, estimate

INCUMBENT = [
    "Acme trail shoes: grip that holds on wet rock",
    "Run muddy trails with dry feet in Acme",
    "Weekend trails feel lighter in Acme shoes",
    "Acme: the trail shoe for every runner",
]
CANDIDATE = [
    "Try Acme trail shoes: 2 layers of grip for wet rock",
    "Shop Acme trail shoes and run 10 km further!",
    "Why slip? Acme trail shoes grip wet rock",
    "Acme trail shoes",
]
FLOOR = 0.1
EXPLORATION = (0.0, 0.05)


def one_seed(
    seed: int, horizon: int, batch: int, n_boot: int, explore: float
) -> dict[str, float]:
    """Log under the incumbent with the candidate at the floor, estimate, then serve the
    candidate alone; the figures of one seed."""
    audience = load_audience()
    texts = INCUMBENT + CANDIDATE
    ctr = np.array([audience.true_ctr(t, "Acme") for t in texts])
    k, candidate = len(texts), np.arange(len(INCUMBENT), len(texts))
    rng = np.random.default_rng(seed)
    policy = ThompsonSampling(
        k, np.random.default_rng(seed + 1), samples=2000,
        controls=Controls(
            min_exploration=explore, cap=FLOOR, guaranteed=FLOOR,
            capped=tuple(int(i) for i in candidate),
        ),
    )
    s, n = np.zeros(k), np.zeros(k)
    actions, rewards, pscores, dists = [], [], [], []
    for start in range(0, horizon, batch):
        policy.set_evidence(s, n)
        p = policy.probabilities()
        a, ps = policy.choose_many(min(batch, horizon - start))
        r = (rng.random(a.size) < ctr[a]).astype(np.float64)
        np.add.at(s, a, r)
        np.add.at(n, a, 1.0)
        actions.append(a)
        rewards.append(r)
        pscores.append(ps)
        dists.append(np.broadcast_to(p, (a.size, k)))
    target = np.zeros(k)
    target[candidate] = 1.0 / candidate.size  # adgen ope --policy version:N
    action = np.concatenate(actions)
    data = LoggedData.build(
        action, np.concatenate(rewards), np.concatenate(pscores),
        np.broadcast_to(target, (action.size, k)),
    )
    got = {e.name: e.value for e in estimate(data, rng, n_bootstrap=n_boot)}
    served = rng.choice(candidate, size=horizon)  # the candidate takes the traffic
    earned = float(np.mean(rng.random(horizon) < ctr[served]))
    return {
        "earned": earned, "true": float(ctr[candidate].mean()),
        "logged": float(np.mean(data.reward)),
        "candidate_share_logged": float(np.isin(action, candidate).mean()),
        **{f"{name}": got[name] for name in ESTIMATORS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    horizon, batch, seeds, n_boot = (20_000, 1000, 3, 50) if args.quick else (
        200_000, 2000, 10, 200
    )
    scenarios: dict[float, dict[str, Any]] = {}
    for explore in EXPLORATION:
        runs = [one_seed(args.seed + i, horizon, batch, n_boot, explore) for i in range(seeds)]
        errors = {
            name: float(np.mean([abs(r[name] - r["earned"]) / r["earned"] for r in runs]))
            for name in ESTIMATORS
        }
        table(
            f"min_exploration {explore}: candidate version's CTR estimated from the incumbent's "
            f"log ({horizon:,} impressions, candidate at a {FLOOR:.0%} floor), then earned alone",
            ["seed", "logged CTR", "IPW", "SNIPW", "DR", "earned", "true mean"],
            [[args.seed + i, r["logged"], r["ipw"], r["snipw"], r["dr"], r["earned"], r["true"]]
             for i, r in enumerate(runs)],
        )
        scenarios[explore] = {
            "relative_error": errors,
            "earned_ctr": float(np.mean([r["earned"] for r in runs])),
            "true_ctr": float(np.mean([r["true"] for r in runs])),
            "estimates": {name: float(np.mean([r[name] for r in runs])) for name in ESTIMATORS},
        }
    table(
        "mean relative error against what the candidate earned",
        ["min_exploration", *ESTIMATORS],
        [[explore, *sc["relative_error"].values()] for explore, sc in scenarios.items()],
    )
    default, explored = scenarios[EXPLORATION[0]], scenarios[EXPLORATION[1]]
    emit({
        "bench": "ope_sim", "quick": args.quick, "seed": args.seed, "horizon": horizon,
        "seeds": seeds, "floor": FLOOR, **default,
        "with_exploration": {"min_exploration": EXPLORATION[1], **explored},
    })

if __name__ == "__main__":
    main()
