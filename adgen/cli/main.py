"""Entry point of the ``adgen`` command: wires each command group's module."""

from __future__ import annotations

import logging
import sys

import typer

from adgen.cli import broker_cmd, db_cmd
from adgen.cli.output import err_console
from adgen.errors import AdgenError

app = typer.Typer(
    help="adgen: LLM ad variants, Thompson-sampling allocation, learning from clicks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_cmd.app, name="db")
app.command("broker")(broker_cmd.broker)


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
