"""Common reporting of the benchmarks: a readable table, then one JSON line (docs/benchmarks.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

_console = Console(width=160)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table; floats to 4 significant digits, None as a dash."""
    t = Table(title=title)
    for col in columns:
        t.add_column(col, justify="right")
    for row in rows:
        t.add_row(*("–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
                    for v in row))
    _console.print(t)


def emit(result: dict[str, Any]) -> None:
    """The last line of the output: the figures as one JSON object."""
    print(json.dumps(result), flush=True)
