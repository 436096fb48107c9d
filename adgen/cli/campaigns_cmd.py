"""``adgen campaigns create|list|show``: campaigns from a brief, and how their variants do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, select

from adgen.api.schemas import VariantPublic
from adgen.brief import Brief
from adgen.cli.output import console, print_table
from adgen.db.campaigns import create_campaign, get_campaign, list_variants
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import Campaign, Variant
from adgen.errors import ValidationError
from adgen.settings import get_settings
from adgen.vocabulary import VariantStatus

app = typer.Typer(help="Campaigns: create from a brief, list, show variants.", no_args_is_help=True)


def _brief(file: Path | None, fields: dict[str, object]) -> Brief:
    data: dict[str, object] = {}
    if file is not None:
        try:
            data = json.loads(file.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError(f"cannot read the brief {file}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValidationError(f"the brief {file} must hold a JSON object")
    data.update({k: v for k, v in fields.items() if v not in (None, [])})
    try:
        return Brief.model_validate(data)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValidationError(f"invalid brief: {problems}") from exc


@app.command()
def create(
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Brief (JSON object).")] = None,
    name: Annotated[str | None, typer.Option(help="Campaign name.")] = None,
    product: Annotated[str | None, typer.Option(help="What is advertised.")] = None,
    brand: Annotated[str | None, typer.Option(help="Brand name.")] = None,
    audience: Annotated[str | None, typer.Option(help="Who it is for.")] = None,
    benefit: Annotated[list[str] | None, typer.Option(help="A benefit (repeatable).")] = None,
    locale: Annotated[str | None, typer.Option(help="en or zh.")] = None,
    channel: Annotated[str | None, typer.Option(help="headline, description or social.")] = None,
    reward: Annotated[str | None, typer.Option(help="click or conversion.")] = None,
) -> None:
    """Create a campaign from a brief file and/or options (options win)."""
    brief = _brief(file, {"name": name, "product": product, "brand": brand,
                          "audience": audience, "benefits": benefit, "locale": locale,
                          "channel": channel, "reward": reward})
    engine = make_engine(get_settings().db_url)
    try:
        with transaction(session_factory(engine)) as session:
            campaign = create_campaign(session, brief)
            cid = campaign.id
    finally:
        engine.dispose()
    console.print(f"created campaign [bold]{cid}[/bold] ({brief.name})")


@app.command("list")
def list_() -> None:
    """Every campaign with its number of active variants."""
    engine = make_engine(get_settings().db_url)
    try:
        with session_factory(engine)() as session:
            active = func.count(Variant.id).filter(Variant.status == VariantStatus.ACTIVE)
            rows = session.execute(
                select(Campaign.id, Campaign.name, Campaign.locale, Campaign.channel,
                       Campaign.reward, Campaign.status, active)
                .outerjoin(Variant, Variant.campaign_id == Campaign.id)
                .group_by(Campaign.id)
                .order_by(Campaign.id)
            ).all()
    finally:
        engine.dispose()
    print_table("campaigns", ["id", "name", "locale", "channel", "reward", "status",
                              "active variants"], rows)


@app.command()
def show(campaign_id: Annotated[int, typer.Argument(help="Campaign id.")]) -> None:
    """A campaign's variants with counts, CTR, posterior mean and 95% credible interval."""
    engine = make_engine(get_settings().db_url)
    try:
        with session_factory(engine)() as session:
            campaign = get_campaign(session, campaign_id)
            variants = [VariantPublic.of(v, s, campaign.reward)
                        for v, s in list_variants(session, campaign_id)]
            title = f"campaign {campaign.id}: {campaign.name} (reward: {campaign.reward})"
    finally:
        engine.dispose()
    print_table(
        title,
        ["id", "status", "text", "impressions", "clicks", "conversions", "ctr",
         "posterior mean", "95% CI"],
        [(v.id, v.status, v.text, v.impressions, v.clicks, v.conversions, v.ctr,
          v.posterior_mean, f"{v.ci95_low:.4f}–{v.ci95_high:.4f}") for v in variants],
    )
