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
    """Print a readable table to stdout. Cells wrap (fold) instead of being squeezed to a
    few characters; a terminal too narrow even for that gets one block per row instead
    (field, value), so no column is cut off."""
    widths = [TEXT_MIN_WIDTH if c in TEXT_COLUMNS else min(len(c), 10) for c in columns]
    if console.width < sum(widths) + 3 * len(widths) + 1:
        _print_records(title, columns, rows)
        return
    table = Table(title=title, show_lines=False)
    for col, width in zip(columns, widths, strict=True):
        table.add_column(col, overflow="fold", min_width=width)
    for row in rows:
        table.add_row(*(fmt(v) for v in row))
    console.print(table)


def _print_records(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    console.print(title, style="bold")
    for row in rows:
        record = Table(show_header=False, show_lines=False)
        record.add_column("field", style="dim", no_wrap=True)
        record.add_column("value", overflow="fold", min_width=8)
        for col, value in zip(columns, row, strict=True):
            record.add_row(col, fmt(value))
        console.print(record)


def print_json(value: Any) -> None:
    """Print ``value`` (pydantic models, dataclasses, datetimes included) as JSON."""
    print(json.dumps(to_jsonable_python(value), indent=2, ensure_ascii=False))


def cli_actor() -> str:
    """Who the audit log names for a change made from this shell."""
    return f"{getpass.getuser()} (cli)"
