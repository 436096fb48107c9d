"""Shared CLI output helpers: rich tables and consistent error reporting."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def fmt(value: Any) -> str:
    """Format a cell: floats to 4 significant digits, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


#: Columns that hold prose keep at least this many characters in a narrow terminal.
TEXT_MIN_WIDTH = 24
TEXT_COLUMNS = ("text", "name", "before", "after", "reasons")


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a readable table to stdout; in a narrow terminal cells wrap (fold) instead of
    being squeezed to a few characters."""
    table = Table(title=title, show_lines=False)
    for col in columns:
        width = TEXT_MIN_WIDTH if col in TEXT_COLUMNS else min(len(col), 10)
        table.add_column(col, overflow="fold", min_width=width)
    for row in rows:
        table.add_row(*(fmt(v) for v in row))
    console.print(table)


def print_json(value: Any) -> None:
    """Print ``value`` (pydantic models, dataclasses, datetimes included) as JSON."""
    print(json.dumps(to_jsonable_python(value), indent=2, ensure_ascii=False))


def cli_actor() -> str:
    """Who the audit log names for a change made from this shell."""
    return f"{getpass.getuser()} (cli)"
