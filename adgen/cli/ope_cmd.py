"""``adgen export obp CAMPAIGN --out FILE.npz`` and ``adgen ope CAMPAIGN --policy P``:
a campaign's logged impressions in the Open Bandit Pipeline's layout, and off-policy
estimates (IPW, SNIPW, DR with 95% bootstrap intervals) of what another policy would
have earned on them, beside the logging policy's observed rate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from adgen.cli.output import console, print_json, print_table
from adgen.db.engine import make_engine, session_factory
from adgen.ope import estimate, observed_mean
from adgen.ope_data import (
    POLICIES,
    CampaignLog,
    evaluation_policy,
    load_log,
    logged_data,
    save_npz,
    support,
)
from adgen.settings import get_settings

export_app = typer.Typer(help="Export logged data.", no_args_is_help=True)
CampaignArg = Annotated[int, typer.Argument(help="Campaign id.")]


def _load(campaign_id: int) -> CampaignLog:
    engine = make_engine(get_settings().db_url)
    try:
        with session_factory(engine)() as session:
            return load_log(session, campaign_id)
    finally:
        engine.dispose()


@export_app.command("obp")
def export_obp(
    campaign_id: CampaignArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="The .npz file to write.")],
) -> None:
    """Write a campaign's impressions as OBP-layout arrays (see the README for the keys)."""
    log = _load(campaign_id)
    save_npz(log, out)
    console.print(
        f"wrote {out}: {log.n_rounds} rounds, {log.n_actions} actions, "
        f"{len(log.cell_names)} cells"
        + (f"; {log.skipped} impressions without a snapshot left out" if log.skipped else "")
    )


def ope(
    campaign_id: CampaignArg,
    policy: Annotated[str, typer.Option(help=f"One of {', '.join(POLICIES)}.")] = "ts",
    bootstrap: Annotated[int, typer.Option(min=10, help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and TS draws.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Estimate a policy's reward rate from a campaign's logged impressions."""
    log = _load(campaign_id)
    rng = np.random.default_rng(seed)
    target = evaluation_policy(log, policy, rng)
    estimates = estimate(logged_data(log, target), rng, n_bootstrap=bootstrap)
    logged = observed_mean(log.reward, rng, bootstrap)
    covered = support(log, target)
    result = {
        "campaign_id": campaign_id, "policy": policy, "n_rounds": log.n_rounds,
        "n_actions": log.n_actions, "skipped": log.skipped, "support": covered,
        "logged": vars(logged), "estimates": [vars(e) for e in estimates],
    }
    if as_json:
        print_json(result)
        return
    print_table(
        f"campaign {campaign_id}: policy {policy} estimated from {log.n_rounds} rounds",
        ["estimator", "rate", "95% low", "95% high"],
        [("logging policy (observed)", logged.value, logged.ci95_low, logged.ci95_high)]
        + [(e.name.upper(), e.value, e.ci95_low, e.ci95_high) for e in estimates],
    )
    if covered < 0.999:
        console.print(
            f"[yellow]the logging policy could play only {covered:.1%} of this policy's "
            "choices: the estimates leave the rest out[/yellow]"
        )
