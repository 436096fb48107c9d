"""Reading past A/B tests from a CSV file (optionally gzipped), row by row, with line numbers.

Each bad row (a count that is not a whole number, negative, clicks above impressions, an
empty text or test id) becomes a :class:`RowError` with the
line it starts on; the rest are returned as :class:`ArmRow`. Nothing here touches the database.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from adgen.errors import ValidationError
from adgen.history.cleaning import clean_text

GZIP_MAGIC = b"\x1f\x8b"
MAX_KEY_LEN = 200
#: The conversions column by default; used when the file has it, ignored when it has not.
DEFAULT_CONVERSIONS = "conversions"


@dataclass(frozen=True)
class ColumnMap:
    """Which CSV column holds what; the defaults are the Upworthy archive's names.

    ``conversions``, ``group`` (arms are compared only within a group, such as the image)
    and ``week`` (YYYYWW the test started) are optional: ``None`` or ``""`` means absent.
    The default conversions column, ``conversions``, is read when the file has one.
    """

    test: str = "clickability_test_id"
    text: str = "headline"
    impressions: str = "impressions"
    clicks: str = "clicks"
    conversions: str | None = DEFAULT_CONVERSIONS
    group: str | None = "eyecatcher_id"
    week: str | None = "test_week"

    def __post_init__(self) -> None:
        for name in ("test", "text", "impressions", "clicks"):
            if not getattr(self, name):
                raise ValidationError(f"the {name} column name is empty; name the CSV column")
        for name in ("conversions", "group", "week"):
            if getattr(self, name) == "":
                object.__setattr__(self, name, None)

    def required(self) -> dict[str, str]:
        """Role -> column name for every column in use."""
        roles = {
            "test": self.test,
            "text": self.text,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "conversions": self.conversions,
            "group": self.group,
            "week": self.week,
        }
        return {role: col for role, col in roles.items() if col}


@dataclass(frozen=True)
class ArmRow:
    """One valid row: an arm of a past test with its totals."""

    line: int
    test_id: str
    text: str
    group: str | None
    impressions: int
    clicks: int
    conversions: int | None = None
    week: int | None = None


@dataclass(frozen=True)
class RowError:
    """A skipped row: the line it starts on (the header is line 1) and why."""

    line: int
    reason: str


@dataclass
class ParsedFile:
    """What a file held: valid rows and bad rows."""

    rows: list[ArmRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def records(self) -> int:
        """Data rows read (valid and bad)."""
        return len(self.rows) + len(self.errors)


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    """The file as text, gunzipped when it starts with the gzip magic bytes."""
    with path.open("rb") as fh:
        gzipped = fh.read(2) == GZIP_MAGIC
    with (
        gzip.open(path, "rb") if gzipped else path.open("rb")
    ) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        yield text


def _count(value: str | None, name: str) -> int:
    text = (value or "").strip()
    if not text:
        raise ValueError(f"empty {name}")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not number.is_integer():
        raise ValueError(f"{name} {text!r} is not a whole number")
    return int(number)


def _parse_row(line: int, cells: dict[str, str | None], columns: ColumnMap) -> ArmRow:
    test_id = (cells["test"] or "").strip()
    if not test_id:
        raise ValueError("empty test id")
    if len(test_id) > MAX_KEY_LEN:
        raise ValueError(f"test id longer than {MAX_KEY_LEN} characters")
    text = clean_text(cells["text"])
    if not text:
        raise ValueError("empty text")
    impressions = _count(cells["impressions"], "impressions")
    clicks = _count(cells["clicks"], "clicks")
    if impressions < 0:
        raise ValueError(f"negative impressions ({impressions})")
    if clicks < 0:
        raise ValueError(f"negative clicks ({clicks})")
    if clicks > impressions:
        raise ValueError(f"clicks ({clicks}) > impressions ({impressions})")
    conversions = None
    if columns.conversions and (cells.get("conversions") or "").strip():
        conversions = _count(cells["conversions"], "conversions")
        if conversions < 0:
            raise ValueError(f"negative conversions ({conversions})")
    group = (cells.get("group") or "").strip() or None
    if group is not None and len(group) > MAX_KEY_LEN:
        raise ValueError(f"group longer than {MAX_KEY_LEN} characters")
    week = None
    if columns.week and (cells.get("week") or "").strip():
        week = _count(cells["week"], "week")
    return ArmRow(line, test_id, text, group, impressions, clicks, conversions, week)


def iter_records(
    handle: IO[str], columns: ColumnMap
) -> Iterator[tuple[int, dict[str, str | None]]]:
    """(line where the record starts, role -> cell) for each data record of a CSV stream."""
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError("the file is empty (no header row)") from None
    positions = {name.strip(): i for i, name in enumerate(header)}
    wanted = columns.required()
    if wanted.get("conversions") == DEFAULT_CONVERSIONS and DEFAULT_CONVERSIONS not in positions:
        del wanted["conversions"]  # the default column is optional
    missing = [col for col in wanted.values() if col not in positions]
    if missing:
        raise ValidationError(
            f"column(s) {', '.join(map(repr, missing))} not in the file; "
            f"its columns are: {', '.join(positions)}"
        )
    index = {role: positions[col] for role, col in wanted.items()}
    start = reader.line_num + 1
    records = 0
    for record in reader:
        if record:  # csv yields [] for a blank line
            records += 1
            yield start, {
                role: (record[i] if i < len(record) else None) for role, i in index.items()
            }
        start = reader.line_num + 1
    if not records:
        raise ValidationError("the file has a header row but no data rows")


def read_experiments(
    path: Path, columns: ColumnMap, progress: Callable[[int], None] | None = None
) -> ParsedFile:
    """Parse ``path`` into valid rows and bad rows; ``progress(n)`` after every 1000 records."""
    if not path.is_file():
        raise ValidationError(f"{path} does not exist or is not a file")
    parsed = ParsedFile()
    try:
        with _open_text(path) as handle:
            for line, cells in iter_records(handle, columns):
                try:
                    parsed.rows.append(_parse_row(line, cells, columns))
                except ValueError as exc:
                    parsed.errors.append(RowError(line, str(exc)))
                if progress is not None and parsed.records % 1000 == 0:
                    progress(1000)
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path} is not UTF-8 text: {exc}") from exc
    except (OSError, EOFError, csv.Error) as exc:
        raise ValidationError(f"{path} could not be read as CSV: {exc}") from exc
    if progress is not None:
        progress(parsed.records % 1000)
    return parsed
