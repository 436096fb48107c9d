"""``adgen variants pause|resume ID``, ``adgen campaigns pause|resume|controls ID`` and
``adgen audit``: the operator's levers from a shell, each recorded in the audit log.

A running API picks a change up at its next posterior refresh (``ADGEN_REFRESH_INTERVAL_S``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

from adgen import audit, operations
from adgen.api.schemas import AuditPublic
from adgen.cli.output import cli_actor, console, print_json, print_table
from adgen.db.campaigns import get_campaign
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import Campaign, Variant
from adgen.settings import get_settings

variants_app = typer.Typer(help="Variants: pause and resume.", no_args_is_help=True)

NEXT_REFRESH = "a running API serves it from its next posterior refresh"
T = TypeVar("T")


def _run(change: Callable[[Session], T]) -> T:
    engine = make_engine(get_settings().db_url)
    try:
        with transaction(session_factory(engine)) as session:
            return change(session)
    finally:
        engine.dispose()


def _variant(change: Callable[[Session, int, str], Variant], variant_id: int) -> None:
    def apply(session: Session) -> str:
        variant = change(session, variant_id, cli_actor())
        return f"variant {variant.id} is {variant.status}"

    console.print(f"{_run(apply)}; {NEXT_REFRESH}")


def _campaign(change: Callable[[Session, int, str], Campaign], campaign_id: int) -> None:
    def apply(session: Session) -> str:
        campaign = change(session, campaign_id, cli_actor())
        return f"campaign {campaign.id} is {campaign.status}"

    console.print(f"{_run(apply)}; {NEXT_REFRESH}")


VariantArg = Annotated[int, typer.Argument(help="Variant id.")]
CampaignArg = Annotated[int, typer.Argument(help="Campaign id.")]


@variants_app.command("pause")
def pause_variant(variant_id: VariantArg) -> None:
    """Stop serving a variant (its evidence is kept)."""
    _variant(operations.pause_variant, variant_id)


@variants_app.command("resume")
def resume_variant(variant_id: VariantArg) -> None:
    """Serve a paused variant again."""
    _variant(operations.resume_variant, variant_id)


def pause_campaign(campaign_id: CampaignArg) -> None:
    """Stop serving a campaign."""
    _campaign(operations.pause_campaign, campaign_id)


def resume_campaign(campaign_id: CampaignArg) -> None:
    """Serve a paused campaign again."""
    _campaign(operations.resume_campaign, campaign_id)


def controls(
    campaign_id: CampaignArg,
    floor: Annotated[float | None, typer.Option(help="Least candidate share, 0..1.")] = None,
    cap: Annotated[float | None, typer.Option(help="Most candidate share, (0, 1].")] = None,
    min_exploration: Annotated[
        float | None, typer.Option(help="Share spread evenly over variants, [0, 1).")
    ] = None,
    reset: Annotated[bool, typer.Option(help="Clear all three first (settings apply).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a campaign's traffic controls, or change them when an option is given."""
    settings = get_settings()
    changing = reset or any(v is not None for v in (floor, cap, min_exploration))

    def apply(session: Session) -> dict[str, float]:
        if changing:
            campaign = operations.set_campaign_controls(
                session, campaign_id, cli_actor(),
                floor=floor, cap=cap, min_exploration=min_exploration, reset=reset,
            )
        else:
            campaign = get_campaign(session, campaign_id)
        return operations.effective_controls(campaign, settings).as_dict()

    served = _run(apply)
    if as_json:
        print_json({"campaign_id": campaign_id, **served})
        return
    print_table(f"campaign {campaign_id}: traffic controls served", list(served),
                [list(served.values())])
    if changing:
        console.print(NEXT_REFRESH)


def audit_log(
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many of the newest.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Operator actions, newest first: who, what, when, before and after."""
    rows = _run(lambda s: [AuditPublic.model_validate(e) for e in audit.recent(s, limit, offset)])
    if as_json:
        print_json(rows)
        return
    print_table(
        "audit log",
        ["id", "at", "actor", "action", "target", "before", "after"],
        [(r.id, f"{r.at:%Y-%m-%d %H:%M:%S}", r.actor, r.action,
          f"{r.target_type} {r.target_id}", r.before, r.after) for r in rows],
    )
