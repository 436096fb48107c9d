"""Importing a file of past A/B tests: parse, skip bad rows with their line numbers, store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from adgen.db.models import LOCALES
from adgen.errors import ValidationError
from adgen.history.reader import ArmRow, ColumnMap, RowError, read_experiments
from adgen.history.store import StoreStats, source_label, store_rows


@dataclass(frozen=True)
class ImportReport:
    """The outcome of one import: where from, how many rows, what was added or skipped."""

    source: str
    records: int
    valid: int
    errors: list[RowError]
    stored: StoreStats


def import_file(
    session: Session,
    path: Path,
    columns: ColumnMap | None = None,
    *,
    label: str | None = None,
    locale: str = "en",
    on_read: Callable[[int], None] | None = None,
    on_store: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the tests in ``path`` (CSV, optionally gzipped) as historical evidence.

    Bad rows (and an arm repeated within its test) are skipped and reported with their line
    numbers; rows already stored under the same source, test id, group and text are not
    added again. Conversions above clicks refuse the whole file (``ValidationError``,
    nothing stored). The caller owns the transaction.
    """
    if locale not in LOCALES:
        raise ValidationError(f"locale {locale!r} is not one of {', '.join(LOCALES)}")
    source = source_label(label)
    parsed = read_experiments(path, columns or ColumnMap(), progress=on_read)
    _refuse_conversions_above_clicks(parsed.rows)
    rows, repeats = _first_of_each_arm(parsed.rows)
    errors = sorted(parsed.errors + repeats, key=lambda e: e.line)
    stored = store_rows(session, rows, source, locale=locale, progress=on_store)
    return ImportReport(source, parsed.records, len(rows), errors, stored)


def _first_of_each_arm(rows: list[ArmRow]) -> tuple[list[ArmRow], list[RowError]]:
    """Rows without the arms their test already has (same group and text), and one
    ``RowError`` per repeat: an arm is keyed by its content, so a repeat cannot be stored."""
    first_line: dict[tuple[str, str | None, str], int] = {}
    kept: list[ArmRow] = []
    repeats: list[RowError] = []
    for row in rows:
        seen = first_line.setdefault((row.test_id, row.group, row.text), row.line)
        if seen == row.line:
            kept.append(row)
        else:
            repeats.append(RowError(row.line, f"test {row.test_id!r} repeats the arm of line "
                                              f"{seen} (same text and group): skipped"))
    return kept, repeats


def _refuse_conversions_above_clicks(rows: list[ArmRow]) -> None:
    bad = [r for r in rows if r.conversions is not None and r.conversions > r.clicks]
    if bad:
        lines = ", ".join(f"line {r.line} ({r.conversions} > {r.clicks})" for r in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValidationError(
            f"conversions exceed clicks on {lines}{more}: nothing imported; check that "
            "--conversions-col and --clicks-col name the right columns"
        )
