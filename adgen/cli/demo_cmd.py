"""``adgen demo``: the closed loop on embedded defaults, with a table per round and a chart."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adgen.audience import load_audience
from adgen.cli.output import console
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
    from adgen.cli.demo_report import (
        failure_line,
        log_to_file,
        print_rounds,
        round_line,
        summary_lines,
    )
    from adgen.loop import ClosedLoop, DemoConfig

    aud = load_audience(audience)
    settings = demo_settings(
        get_settings(), train_steps=train_steps, include_zh=include_zh, keep=keep
    )
    config = DemoConfig(
        rounds=rounds, impressions_per_round=impressions, variants_per_campaign=variants, seed=seed
    )
    log = log_to_file(settings.var_dir)
    console.print(
        f"[bold]adgen demo[/bold]: audience [cyan]{aud.name}[/cyan], {rounds} rounds of "
        f"{impressions:,} impressions, database {settings.db_url}, log {log}",
        soft_wrap=True,
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with ClosedLoop(settings, aud, config) as loop:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("campaigns and first variants", total=len(loop.briefs))
            loop.setup(progress=lambda n: bar.advance(task, n))
        for r in range(1, rounds + 1):
            with Progress(*columns, console=console, transient=True) as bar:
                task = bar.add_task(f"round {r}: traffic, then training", total=impressions)
                advance: Callable[[int], None] = functools.partial(bar.advance, task)
                report = loop.run_round(r, progress=advance)
            for failure in report.failures:
                console.print(
                    failure_line(r, failure, log), style="red", highlight=False, soft_wrap=True
                )
            if not console.is_terminal:
                console.print(round_line(report), soft_wrap=True, highlight=False)
        reports = loop.rounds
        summary = loop.summary()
    if console.is_terminal:
        print_rounds(console, reports)
    chart = plot_rounds(
        reports, settings.var_dir / "demo_rounds.png", f"adgen demo, audience {aud.name}"
    )
    for line in summary_lines(summary):
        console.print(line, highlight=False)
    console.print(f"chart saved to {chart}; the full log is {log}")
    if summary.could_not_learn:
        console.print(
            f"[red]the loop could not learn: all {summary.cycles} training cycles failed "
            f"(see {log})[/red]"
        )
        raise typer.Exit(1)
