"""``adgen models list | promote V | rollback V``: model versions and the operator's levers."""

from __future__ import annotations

from typing import Annotated

import typer

from adgen import audit
from adgen.cli.output import cli_actor, console, print_table
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.model.versions import promote as promote_version
from adgen.model.versions import rollback as rollback_version
from adgen.settings import get_settings
from adgen.training.summary import version_summaries
from adgen.vocabulary import Decision

app = typer.Typer(help="Model versions: list, promote, roll back.", no_args_is_help=True)


@app.command("list")
def list_(
    base: Annotated[str | None, typer.Option(help="Only this lineage (base model).")] = None,
) -> None:
    """Every model version with its status, lineage, evidence and training figures."""
    engine = make_engine(get_settings().db_url, must_exist=True)
    try:
        with session_factory(engine)() as session:
            rows = version_summaries(session, base)
    finally:
        engine.dispose()
    print_table(
        "model versions",
        [
            "id",
            "status",
            "base model",
            "parent",
            "created",
            "variants",
            "impressions",
            "rate",
            "held-out acc",
            "margin Δ",
            "adapter",
        ],
        [
            (
                r.id,
                r.status,
                r.base_model,
                r.parent_id,
                r.created_at.strftime("%Y-%m-%d %H:%M"),
                r.variants,
                r.impressions,
                r.rate,
                r.heldout_accuracy,
                r.margin_gain,
                r.adapter,
            )
            for r in rows
        ],
    )


@app.command()
def promote(version: Annotated[int, typer.Argument(help="Model version id.")]) -> None:
    """Make a candidate (or retired) version active; the previous active one is retired."""
    _decide(version, Decision.PROMOTE)


@app.command()
def rollback(version: Annotated[int, typer.Argument(help="Model version id.")]) -> None:
    """Roll a version back: its variants are paused; if it was active, its parent is again."""
    _decide(version, Decision.ROLLBACK)


def _decide(version_id: int, action: Decision) -> None:
    act = promote_version if action == Decision.PROMOTE else rollback_version
    engine = make_engine(get_settings().db_url)
    try:
        with transaction(session_factory(engine)) as session:
            decision = audit.record_version_change(
                session, cli_actor(), f"model.{action}", version_id,
                lambda: act(session, version_id),
            )
            paused = decision.details.get("paused_variants")
            incumbent = decision.incumbent_version_id
    finally:
        engine.dispose()
    done = "promoted" if action == Decision.PROMOTE else "rolled back"
    console.print(
        f"v{version_id} {done}"
        + (f"; {paused} variants paused" if paused else "")
        + (f"; active now: v{incumbent}" if action == Decision.ROLLBACK and incumbent else "")
    )
