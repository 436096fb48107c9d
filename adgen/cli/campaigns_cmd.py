"""``adgen campaigns create|list|show|pause|resume|controls|cells``: campaigns and their
variants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, select

from adgen.api.schemas import CampaignDetail
from adgen.brief import Brief
from adgen.cli import cells_cmd, operator_cmd
from adgen.cli.output import console, print_json, print_table
from adgen.db.campaigns import create_campaign, get_campaign, list_variants
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import Campaign, Variant
from adgen.errors import ValidationError
from adgen.operations import effective_controls
from adgen.settings import get_settings
from adgen.vocabulary import VariantStatus

app = typer.Typer(
    help="Campaigns: create from a brief, list, show variants, pause, resume, traffic controls.",
    no_args_is_help=True,
)
app.command("pause")(operator_cmd.pause_campaign)
app.command("resume")(operator_cmd.resume_campaign)
app.command("controls")(operator_cmd.controls)
app.command("cells")(cells_cmd.cells)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


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
def list_(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every campaign with its number of active variants."""
    engine = make_engine(get_settings().db_url, must_exist=True)
    try:
        with session_factory(engine)() as session:
            active = func.count(Variant.id).filter(Variant.status == VariantStatus.ACTIVE)
            stmt = (
                select(Campaign.id, Campaign.name, Campaign.locale, Campaign.channel,
                       Campaign.reward, Campaign.status, active)
                .outerjoin(Variant, Variant.campaign_id == Campaign.id)
                .group_by(Campaign.id)
                .order_by(Campaign.id)
            )
            if status is not None:
                stmt = stmt.where(Campaign.status == status)
            rows = session.execute(stmt).all()
    finally:
        engine.dispose()
    columns = ["id", "name", "locale", "channel", "reward", "status", "active variants"]
    if as_json:
        print_json([dict(zip(columns, r, strict=True)) for r in rows])
        return
    print_table("campaigns", columns, rows)


@app.command()
def show(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")], as_json: JsonOption = False
) -> None:
    """A campaign's variants with counts, CTR, conversion rate, posterior mean, 95% credible
    interval and probability of being best (the same figures as the API)."""
    settings = get_settings()
    engine = make_engine(settings.db_url, must_exist=True)
    try:
        with session_factory(engine)() as session:
            campaign = get_campaign(session, campaign_id)
            detail = CampaignDetail.of(
                campaign, list_variants(session, campaign_id),
                effective_controls(campaign, settings),
            )
    finally:
        engine.dispose()
    if as_json:
        print_json(detail)
        return
    print_table(
        f"campaign {detail.id}: {detail.name} (reward: {detail.reward}, {detail.status})",
        ["id", "status", "text", "impressions", "clicks", "conversions", "ctr",
         "conversion rate", "posterior mean", "95% CI", "P(best)"],
        [(v.id, v.status, v.text, v.impressions, v.clicks, v.conversions, v.ctr,
          v.conversion_rate, v.posterior_mean, f"{v.ci95_low:.4f}–{v.ci95_high:.4f}",
          v.prob_best) for v in detail.variants],
    )
