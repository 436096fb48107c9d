"""``adgen campaigns cells ID``: a contextual campaign's results per cell, or a change of
the context attributes it allocates on and its cap on cells (audited)."""

from __future__ import annotations

from typing import Annotated

import typer

from adgen import operations
from adgen.cell_results import CellResult, campaign_cells
from adgen.cli.operator_cmd import NEXT_REFRESH
from adgen.cli.output import cli_actor, console, print_json, print_table
from adgen.db.campaigns import get_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.settings import get_settings


def cells(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", "-a", help="A context attribute to allocate on (repeatable)."),
    ] = None,
    max_cells: Annotated[int | None, typer.Option(help="Most cells kept.")] = None,
    off: Annotated[bool, typer.Option(help="Stop allocating per cell.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show results per cell, or change the attributes / cap when an option is given."""
    settings = get_settings()
    changing = off or bool(attribute) or max_cells is not None
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            if changing:
                campaign = operations.set_campaign_cells(
                    session, campaign_id, cli_actor(),
                    attributes=[] if off else attribute, max_cells=max_cells,
                )
            else:
                campaign = get_campaign(session, campaign_id)
            attributes = list(campaign.context_attributes or [])
            cap = campaign.max_cells or settings.max_cells
            results = campaign_cells(session, campaign_id)
    finally:
        engine.dispose()
    if as_json:
        print_json({"campaign_id": campaign_id, "context_attributes": attributes or None,
                    "max_cells": cap, "cells": [_record(c) for c in results]})
        return
    what = ", ".join(attributes) if attributes else "nothing (not contextual)"
    console.print(f"campaign {campaign_id} allocates per {what}; at most {cap} cells")
    print_table(
        f"campaign {campaign_id}: results per cell",
        ["cell", "variant", "impressions", "clicks", "ctr", "95% CI", "srm p"],
        [(c.cell, a.variant_id, a.impressions, a.clicks, a.ctr,
          f"{a.ci95_low:.4f}–{a.ci95_high:.4f}",
          c.srm.p_value if c.srm is not None and c.srm.ready else None)
         for c in results for a in c.arms],
    )
    if changing:
        console.print(NEXT_REFRESH)


def _record(c: CellResult) -> dict[str, object]:
    return {
        "cell": c.cell, "impressions": c.impressions, "clicks": c.clicks, "ctr": c.ctr,
        "srm_p_value": c.srm.p_value if c.srm is not None and c.srm.ready else None,
        "variants": [vars(a) for a in c.arms],
    }
