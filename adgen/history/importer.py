"""Importing a file of past A/B tests: parse, skip bad rows with their line numbers, store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from adgen.db.models import LOCALES
from adgen.errors import ValidationError
from adgen.history.reader import ColumnMap, RowError, read_experiments
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

    Bad rows are skipped and reported with their line numbers; importing a file twice
    adds nothing the second time. The caller owns the transaction.
    """
    if locale not in LOCALES:
        raise ValidationError(f"locale {locale!r} is not one of {', '.join(LOCALES)}")
    parsed = read_experiments(path, columns or ColumnMap(), progress=on_read)
    source = source_label(path, parsed.sha256, label)
    stored = store_rows(session, parsed.rows, source, locale=locale, progress=on_store)
    return ImportReport(source, parsed.records, len(parsed.rows), parsed.errors, stored)
