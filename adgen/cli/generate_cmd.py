"""``adgen generate CAMPAIGN_ID``: write variants with the model, show what was accepted."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adgen.cli.output import console, print_table
from adgen.db.engine import make_engine, session_factory
from adgen.generator import GenerationResult, generate_and_store
from adgen.model.versions import ModelRegistry
from adgen.settings import get_settings


def generate(
    campaign_id: Annotated[int, typer.Argument(help="The campaign to write variants for.", min=1)],
    n: Annotated[int, typer.Option("--n", help="Variants to accept.", min=1, max=256)] = 8,
    version: Annotated[
        int | None, typer.Option("--version", help="Model version id; default: the active one.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Sampling seed; default: derived, reproducible.")
    ] = None,
) -> None:
    """Generate N variants for a campaign; they pass every guardrail or are stored rejected."""
    settings = get_settings()
    engine = make_engine(settings.db_url)
    registry = ModelRegistry(settings)
    try:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("generating variants", total=n)
            result = generate_and_store(
                session_factory(engine),
                registry,
                campaign_id,
                n,
                version,
                seed,
                progress=lambda done: bar.update(task, completed=done),
            )
    finally:
        engine.dispose()
    _show(campaign_id, n, result)


def _show(campaign_id: int, n: int, result: GenerationResult) -> None:
    print_table(
        f"campaign {campaign_id}: {len(result.accepted)} variants accepted "
        f"(model version {result.model_version_id}, seed {result.seed})",
        ["id", "text", "length"],
        [
            (vid, c.text, f"{c.report.length} {c.report.unit}")
            for vid, c in zip(result.variant_ids, result.accepted, strict=True)
        ],
    )
    print_table(
        f"{len(result.rejected)} of {result.candidates} candidates rejected "
        f"in {result.attempts} attempts",
        ["reason", "candidates"],
        list(result.rejections.items()),
    )
    diversity = result.diversity
    console.print(
        f"distinct-1 {diversity.distinct_1:.3f}, distinct-2 {diversity.distinct_2:.3f}, "
        f"mean pairwise similarity {diversity.mean_pairwise_similarity:.3f}"
    )
    if len(result.accepted) < n:
        console.print(
            f"[yellow]{len(result.accepted)} of {n} variants after {result.attempts} attempts; "
            "ask again or raise ADGEN_GEN_MAX_ATTEMPTS[/yellow]"
        )
