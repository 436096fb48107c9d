"""``adgen demo``: the closed loop on embedded defaults, with a table per round and a chart."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adgen.audience import load_audience
from adgen.cli.output import console, print_table
from adgen.settings import Settings, get_settings

DEMO_RM_SAMPLES = 16


def demo_settings(
    base: Settings, *, train_steps: int | None, include_zh: bool, keep: bool
) -> Settings:
    """The demo's settings: its own SQLite file unless a database is configured, and at
    most ``DEMO_RM_SAMPLES`` reward-ranked samples per campaign (five rounds in 15 minutes
    on a 2-core CPU)."""
    update: dict[str, object] = {"rm_samples": min(base.rm_samples, DEMO_RM_SAMPLES)}
    if base.database_url is None:
        db = base.var_dir / "demo.db"
        if not keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        update["database_url"] = f"sqlite:///{db.as_posix()}"
    if train_steps is not None:
        update["train_steps"] = train_steps
    if not include_zh:
        update["train_locales"] = [loc for loc in base.train_locales if loc != "zh"]
    return base.model_copy(update=update)


def demo(
    audience: Annotated[
        Path | None, typer.Option(help="Audience JSON file (default: the shipped one).")
    ] = None,
    rounds: int = typer.Option(5, min=1, help="Rounds of traffic + retraining."),
    impressions: int = typer.Option(20_000, min=100, help="Simulated impressions per round."),
    variants: int = typer.Option(12, min=2, help="Variants per campaign at the start."),
    train_steps: int = typer.Option(
        8, min=1, help="Optimizer steps per training cycle (the trainer's default is 40)."
    ),
    include_zh: bool = typer.Option(False, help="Also train the Chinese lineage each round."),
    keep: bool = typer.Option(
        False, help="Keep the previous demo database instead of starting fresh."
    ),
    seed: int = typer.Option(0, help="Seed of the traffic and the allocator."),
) -> None:
    """Run the closed loop: generate, serve through Kafka, retrain, roll out, gate."""
    from adgen.charts import plot_rounds
    from adgen.loop import ClosedLoop, DemoConfig

    aud = load_audience(audience)
    settings = demo_settings(
        get_settings(), train_steps=train_steps, include_zh=include_zh, keep=keep
    )
    config = DemoConfig(
        rounds=rounds, impressions_per_round=impressions, variants_per_campaign=variants, seed=seed
    )
    console.print(
        f"[bold]adgen demo[/bold]: audience [cyan]{aud.name}[/cyan], {rounds} rounds of "
        f"{impressions:,} impressions, database {settings.db_url}"
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with ClosedLoop(settings, aud, config) as loop, Progress(*columns, console=console) as bar:
        task = bar.add_task("campaigns and first variants", total=len(loop.briefs))
        loop.setup(progress=lambda n: bar.advance(task, n))
        for r in range(1, rounds + 1):
            task = bar.add_task(f"round {r}: traffic", total=impressions)
            bar.console.print(
                f"round {r}: serving traffic, then training (this takes a while on CPU)"
            )
            advance: Callable[[int], None] = functools.partial(bar.advance, task)
            report = loop.run_round(r, progress=advance)
            bar.console.print(f"round {r}: " + ("; ".join(report.training) or "no training"))
        reports = loop.rounds
    print_table(
        "closed loop, per round",
        [
            "round",
            "serving",
            "true CTR of its texts",
            "served CTR",
            "impressions",
            "regret",
            "new candidate",
            "its true CTR",
            "promoted",
            "rolled back",
        ],
        [
            (
                r.round,
                ", ".join(f"{k}:v{v}" for k, v in r.serving.items()),
                r.generated_true_ctr,
                r.served_ctr,
                r.impressions,
                r.regret,
                ", ".join(f"v{c}" for c in r.candidates) or None,
                r.candidate_true_ctr,
                ", ".join(f"v{v}" for v in r.promoted) or None,
                ", ".join(f"v{v}" for v in r.rolled_back) or None,
            )
            for r in reports
        ],
    )
    chart = plot_rounds(
        reports, settings.var_dir / "demo_rounds.png", f"adgen demo, audience {aud.name}"
    )
    console.print(f"chart saved to {chart}")
