"""``adgen import-experiments FILE``: past A/B tests from a CSV into the historical tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from adgen.cli.output import console, print_table
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.history.importer import ImportReport, import_file
from adgen.history.reader import DEFAULT_CONVERSIONS, ColumnMap
from adgen.settings import get_settings

SHOWN_ERRORS = 20


def _optional(help_text: str) -> typer.models.OptionInfo:
    return typer.Option(help=f"{help_text} An empty value ('') means the file has none.")


def import_experiments(
    file: Annotated[Path, typer.Argument(help="CSV of past tests, optionally gzipped.")],
    test_col: Annotated[str, typer.Option(help="Column of the test id.")] = "clickability_test_id",
    text_col: Annotated[str, typer.Option(help="Column of the ad text.")] = "headline",
    impressions_col: Annotated[str, typer.Option(help="Column of impressions.")] = "impressions",
    clicks_col: Annotated[str, typer.Option(help="Column of clicks.")] = "clicks",
    conversions_col: Annotated[
        str, _optional("Column of conversions (the default is used when the file has it).")
    ] = DEFAULT_CONVERSIONS,
    group_col: Annotated[
        str, _optional("Column grouping comparable arms (e.g. the image).")
    ] = "eyecatcher_id",
    week_col: Annotated[str, _optional("Column of the week the test ran (YYYYWW).")] = "test_week",
    label: Annotated[
        str | None,
        typer.Option(help="Source of the evidence (test ids are unique within it); default: "
                     "'default'. The file name plays no part."),
    ] = None,
    locale: Annotated[str, typer.Option(help="Locale of the texts: en or zh.")] = "en",
) -> None:
    """Import past tests as historical evidence (never mixed into live arm_stats).

    Bad rows are skipped and listed with their line numbers; rows already imported (same
    source, test id, group and text, whatever the file is called) are not added again.
    """
    columns = ColumnMap(
        test=test_col,
        text=text_col,
        impressions=impressions_col,
        clicks=clicks_col,
        conversions=conversions_col or None,
        group=group_col or None,
        week=week_col or None,
    )
    settings = get_settings()
    engine = make_engine(settings.db_url)
    try:
        parts = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,} rows"),
            TimeElapsedColumn(),
        )
        with Progress(*parts, console=console, transient=True) as bar:
            reading = bar.add_task("reading", total=None)
            storing = bar.add_task("storing", total=None)
            with transaction(session_factory(engine)) as session:
                report = import_file(
                    session,
                    file,
                    columns,
                    label=label,
                    locale=locale,
                    on_read=lambda n: bar.advance(reading, n),
                    on_store=lambda n: bar.advance(storing, n),
                )
    finally:
        engine.dispose()
    _show(report)


def _show(report: ImportReport) -> None:
    stored = report.stored
    print_table(
        f"import from {report.source}",
        ["rows read", "imported", "already stored", "skipped (bad)", "new tests"],
        [(report.records, stored.arms_new, stored.duplicates, len(report.errors),
          stored.experiments_new)],
    )
    if report.errors:
        shown = report.errors[:SHOWN_ERRORS]
        more = len(report.errors) - len(shown)
        print_table(
            f"skipped rows{f' (first {SHOWN_ERRORS}; {more} more)' if more else ''}",
            ["line", "reason"],
            [(e.line, e.reason) for e in shown],
        )
