"""``adgen train --once`` (one training cycle by hand) and ``adgen trainer`` (the scheduler).

The training modules (TRL, torch, the reward model) are imported when a command runs, so
that the rest of the CLI starts quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from adgen.cli.output import console, print_table
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.settings import get_settings
from adgen.signals import stop_on_signals
from adgen.vocabulary import RunStatus

if TYPE_CHECKING:
    from adgen.training.cycle import CycleResult

#: Run metrics shown after ``adgen train --once``, in this order.
SHOWN_METRICS = (
    "pairs_live",
    "pairs_reward_model",
    "kto_examples",
    "heldout_pairs",
    "steps",
    "step_s",
    "train_loss",
    "reward_margin_final",
    "reward_accuracy_final",
    "heldout_margin_before",
    "heldout_margin_after",
    "heldout_accuracy_before",
    "heldout_accuracy_after",
    "adapter_mb",
    "rollout_variants",
)


def train(
    once: Annotated[
        bool, typer.Option("--once", help="Run one cycle now instead of the scheduler.")
    ] = False,
    base: Annotated[
        str | None, typer.Option(help="Only this lineage (base model); default: every lineage.")
    ] = None,
) -> None:
    """Train: one cycle per lineage now (--once, with progress bars), else the scheduler."""
    settings = get_settings()
    if not once:
        trainer()
        return
    from adgen.model.versions import ModelRegistry
    from adgen.training.cycle import run_cycle
    from adgen.training.evidence import lineages

    engine = make_engine(settings.db_url)
    try:
        sessions = session_factory(engine)
        with transaction(sessions) as session:
            bases = [base] if base else lineages(session, settings)
        if not bases:
            console.print("no active campaign: nothing to train for")
            return
        registry = ModelRegistry(settings)
        for name in bases:
            console.rule(f"training cycle: {name}")
            _show(run_cycle(settings, sessions, registry, name, progress=True))
    finally:
        engine.dispose()


def trainer() -> None:
    """The trainer service: scheduled cycles and gate decisions until SIGTERM / Ctrl-C."""
    from adgen.training.scheduler import run_trainer

    run_trainer(get_settings(), stop_on_signals())


def _show(result: CycleResult) -> None:
    colours: dict[str, str] = {RunStatus.SUCCEEDED: "green", RunStatus.SKIPPED: "yellow"}
    colour = colours.get(result.status, "red")
    console.print(
        f"run [bold]#{result.run_id}[/bold]: [{colour}]{result.status}[/{colour}] "
        f"in {result.duration_s:.1f} s" + (f" — {result.reason}" if result.reason else "")
    )
    if result.candidate_version_id is not None:
        console.print(
            f"candidate [bold]v{result.candidate_version_id}[/bold] wrote "
            f"{len(result.variant_ids)} variants; it gets capped traffic until the gate decides"
        )
    rows = [(k, result.metrics[k]) for k in SHOWN_METRICS if k in result.metrics]
    if rows:
        print_table("run metrics", ["metric", "value"], rows)
