"""Importing past A/B tests: exact landing on the real PostgreSQL, bad rows, idempotency."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from adgen.cli.main import app
from adgen.db.engine import make_engine, session_factory, transaction
from adgen.db.models import ArmStats, HistoricalArm, HistoricalExperiment
from adgen.errors import ValidationError
from adgen.history.cleaning import clean_text
from adgen.history.evidence import load_historical
from adgen.history.importer import import_file
from adgen.history.pairs import historical_pairs
from adgen.history.reader import ColumnMap
from adgen.settings import get_settings

# Custom column names (mapped by options); a quoted field spans lines 8-9.
CSV = """exp,copy,imps,clk,conv,img,wk
t1,Hello <b>world</b>,1000,100,7,imgA,201401
t1,"Second   headline",1000,50,,imgA,201402
t1,Negative,-5,0,,imgA,201401
t2,Too many,10,20,,imgB,201403
t2,   <br> ,10,1,,imgB,201403
t2,Letters,10,abc,,imgB,201403
t2,"multi
line",500,20,,imgB,201403
,no test id,5,1,,imgB,201403
t3,Third &amp; last,2000,30,3,,201405
t1,Hello <b>world</b>,1000,100,7,imgA,201401
t3,Half a click,10,2.5,,,201405
"""
COLUMNS = ColumnMap(
    test="exp", text="copy", impressions="imps", clicks="clk", conversions="conv",
    group="img", week="wk",
)
EXPECTED_ERRORS = [
    (4, "negative impressions (-5)"),
    (5, "clicks (20) > impressions (10)"),
    (6, "empty text"),
    (7, "clicks 'abc' is not a number"),
    (10, "empty test id"),
    (12, "test 't1' repeats the arm of line 2 (same text and group): skipped"),
    (13, "clicks '2.5' is not a whole number"),
]
# (test, text, group, impressions, clicks, conversions)
EXPECTED_ARMS = sorted([
    ("t1", "Hello world", "imgA", 1000, 100, 7),
    ("t1", "Second headline", "imgA", 1000, 50, None),
    ("t2", "multi line", "imgB", 500, 20, None),
    ("t3", "Third & last", None, 2000, 30, 3),
], key=str)


def _write(tmp_path: Path, name: str = "tests.csv", gz: bool = False) -> Path:
    path = tmp_path / name
    data = CSV.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _arms(session: Session) -> list[tuple[object, ...]]:
    rows = session.execute(
        sa.select(
            HistoricalExperiment.external_id, HistoricalArm.text, HistoricalArm.group_key,
            HistoricalArm.impressions, HistoricalArm.clicks, HistoricalArm.conversions,
        ).join(HistoricalExperiment, HistoricalArm.experiment_id == HistoricalExperiment.id)
    ).all()
    return sorted((tuple(r) for r in rows), key=str)


def test_clean_text_strips_html_and_spaces() -> None:
    assert clean_text("  A <br/>line&nbsp;with <strong>tags</strong>  ") == "A line with tags"
    assert clean_text("<p> </p>") == ""
    assert clean_text(None) == ""


def test_import_lands_exactly_and_twice_changes_nothing(
    tmp_path: Path, pg_sessions: sessionmaker[Session]
) -> None:
    path = _write(tmp_path)
    with transaction(pg_sessions) as session:
        report = import_file(session, path, COLUMNS)
    assert report.records == 11
    assert report.valid == 4
    assert [(e.line, e.reason) for e in report.errors] == EXPECTED_ERRORS
    assert (report.stored.experiments_new, report.stored.arms_new, report.stored.duplicates) == (
        3, 4, 0,
    )
    assert report.source == "default"

    with pg_sessions() as session:
        assert _arms(session) == EXPECTED_ARMS
        experiments = session.execute(
            sa.select(
                HistoricalExperiment.external_id, HistoricalExperiment.started_week,
                HistoricalExperiment.locale, HistoricalExperiment.source,
            ).order_by(HistoricalExperiment.external_id)
        ).all()
        assert [tuple(e) for e in experiments] == [
            ("t1", 201401, "en", report.source),
            ("t2", 201403, "en", report.source),
            ("t3", 201405, "en", report.source),
        ]
        assert session.scalar(sa.select(sa.func.count()).select_from(ArmStats)) == 0

    with transaction(pg_sessions) as session:
        again = import_file(session, path, COLUMNS)
    assert (again.stored.experiments_new, again.stored.arms_new, again.stored.duplicates) == (
        0, 0, 4,
    )
    with pg_sessions() as session:
        assert _arms(session) == EXPECTED_ARMS
        assert session.scalar(sa.select(sa.func.count()).select_from(HistoricalExperiment)) == 3


def test_gzipped_file_and_label(tmp_path: Path, pg_sessions: sessionmaker[Session]) -> None:
    path = _write(tmp_path, "tests.csv.gz", gz=True)
    with transaction(pg_sessions) as session:
        report = import_file(session, path, COLUMNS, label="acme-2014", locale="zh")
    assert report.source == "acme-2014"
    assert [e.line for e in report.errors] == [line for line, _ in EXPECTED_ERRORS]
    with pg_sessions() as session:
        assert _arms(session) == EXPECTED_ARMS
        locales = session.scalars(sa.select(HistoricalExperiment.locale).distinct()).all()
        assert locales == ["zh"]
        evidence = load_historical(session)
    assert sorted(a.text for a in evidence) == sorted(a[1] for a in EXPECTED_ARMS)


def test_bad_files_get_clear_errors(tmp_path: Path, pg_sessions: sessionmaker[Session]) -> None:
    path = _write(tmp_path)
    with transaction(pg_sessions) as session:
        with pytest.raises(ValidationError, match=r"'headline'.*not in the file.*exp, copy"):
            import_file(session, path, ColumnMap())
        with pytest.raises(ValidationError, match="does not exist"):
            import_file(session, tmp_path / "missing.csv", COLUMNS)
        with pytest.raises(ValidationError, match="locale"):
            import_file(session, path, COLUMNS, locale="fr")
    header_only = tmp_path / "header.csv"
    header_only.write_text("exp,copy,imps,clk\n\n")
    plain = ColumnMap("exp", "copy", "imps", "clk", group="", week="")
    with transaction(pg_sessions) as session, pytest.raises(ValidationError, match="no data rows"):
        import_file(session, header_only, plain)
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("exp,copy,imps,clk\nt1,caf\xe9,10,1\n".encode("latin-1"))
    with transaction(pg_sessions) as session, pytest.raises(ValidationError, match="not UTF-8"):
        import_file(session, bad, plain)
    with pg_sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(HistoricalArm)) == 0


def test_pairs_within_test_and_group(tmp_path: Path, pg_sessions: sessionmaker[Session]) -> None:
    with transaction(pg_sessions) as session:
        import_file(session, _write(tmp_path), COLUMNS)
    with pg_sessions() as session:
        pairs = list(historical_pairs(load_historical(session), threshold=0.9))
    # Only t1/imgA has two different texts: 100/1000 clearly beats 50/1000.
    assert {(p.preferred, p.other) for p in pairs} == {("Hello world", "Second headline")}
    assert all(p.probability > 0.999 for p in pairs)


def test_cli_import_reports_summary_and_lines(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADGEN_DATABASE_URL", pg_url)
    monkeypatch.setenv("ADGEN_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    path = _write(tmp_path)
    args = ["import-experiments", str(path), "--test-col", "exp", "--text-col", "copy",
            "--impressions-col", "imps", "--clicks-col", "clk", "--conversions-col", "conv",
            "--group-col", "img", "--week-col", "wk"]
    try:
        first = CliRunner().invoke(app, args)
        second = CliRunner().invoke(app, args)
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0, first.output
    assert "imported" in first.output and "skipped rows" in first.output
    for line, _reason in EXPECTED_ERRORS:
        assert f"│ {line} " in first.output
    assert "clicks (20) > impressions (10)" in first.output
    assert second.exit_code == 0, second.output
    engine = make_engine(pg_url)
    try:
        with session_factory(engine)() as session:
            assert _arms(session) == EXPECTED_ARMS
    finally:
        engine.dispose()


def test_import_on_sqlite(tmp_path: Path, sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        sessions = session_factory(engine)
        for _ in range(2):
            with transaction(sessions) as session:
                import_file(session, _write(tmp_path), COLUMNS)
        with sessions() as session:
            assert _arms(session) == EXPECTED_ARMS
    finally:
        engine.dispose()


def test_evidence_is_keyed_by_content_not_by_file(
    tmp_path: Path, pg_sessions: sessionmaker[Session]
) -> None:
    with transaction(pg_sessions) as session:
        import_file(session, _write(tmp_path), COLUMNS)
    grown = tmp_path / "renamed copy.csv"
    grown.write_text(CSV + "t3,A brand new arm,100,9,1,,201405\n")
    with transaction(pg_sessions) as session:
        report = import_file(session, grown, COLUMNS)
    assert (report.stored.experiments_new, report.stored.arms_new, report.stored.duplicates) == (
        0, 1, 4,
    )
    with pg_sessions() as session:
        assert len(_arms(session)) == len(EXPECTED_ARMS) + 1


def test_conversions_above_clicks_refuse_the_whole_file(
    tmp_path: Path, pg_sessions: sessionmaker[Session]
) -> None:
    path = tmp_path / "conv.csv"
    path.write_text("id,headline,impressions,clicks,conversions\n"
                    "a,Fine,100,10,2\nb,Wrong way round,100,3,7\n")
    columns = ColumnMap(test="id", group=None, week=None)  # conversions: the default column
    with transaction(pg_sessions) as session, pytest.raises(
        ValidationError, match=r"line 3 \(7 > 3\): nothing imported"
    ):
        import_file(session, path, columns)
    with pg_sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(HistoricalArm)) == 0
    path.write_text("id,headline,impressions,clicks\na,Fine,100,10\n")  # no conversions column
    with transaction(pg_sessions) as session:
        assert import_file(session, path, columns).stored.arms_new == 1
