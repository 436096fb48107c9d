"""Entry point of the ``adgen`` command: wires each command group's module."""

from __future__ import annotations

import logging
import sys

import typer

from adgen.cli import (
    broker_cmd,
    campaigns_cmd,
    db_cmd,
    demo_cmd,
    generate_cmd,
    import_cmd,
    ingest_cmd,
    model_cmd,
    models_cmd,
    ope_cmd,
    operator_cmd,
    serve_cmd,
    train_cmd,
)
from adgen.cli.output import err_console
from adgen.errors import AdgenError

app = typer.Typer(
    help="adgen: LLM ad variants, Thompson-sampling allocation, learning from clicks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_cmd.app, name="db")
app.add_typer(model_cmd.app, name="model")
app.command("broker")(broker_cmd.broker)
app.command("demo")(demo_cmd.demo)
app.command("ingest")(ingest_cmd.ingest)
app.add_typer(models_cmd.app, name="models")
app.command("train")(train_cmd.train)
app.command("trainer")(train_cmd.trainer)
app.add_typer(campaigns_cmd.app, name="campaigns")
app.add_typer(operator_cmd.variants_app, name="variants")
app.command("audit")(operator_cmd.audit_log)
app.command("serve")(serve_cmd.serve)
app.command("generate")(generate_cmd.generate)
app.command("import-experiments")(import_cmd.import_experiments)
app.add_typer(ope_cmd.export_app, name="export")
app.command("ope")(ope_cmd.ope)


@app.callback()
def _setup(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)


def main() -> None:
    """Run the CLI, turning adgen's own errors into a one-line message and exit code 2."""
    try:
        app()
    except AdgenError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)


if __name__ == "__main__":
    main()
