"""The repository stands alone: nothing in it points at files outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("adgen", "bench", "services", "tests", "migrations", "docs", ".ci")
TOP_FILES = ("README.md", "Makefile", "Dockerfile", "docker-compose.yml", "pyproject.toml")
#: Documents that lived beside the repository once, and paths that climb out of it.
OUTSIDE = re.compile(
    r"\.\./\.\./|\.\./shared|/shared/data|\"shared\" /|BENCH\.md|NOTES-ML|DESIGN\.md"
)


def _texts() -> list[Path]:
    files = [ROOT / name for name in TOP_FILES]
    for folder in SCANNED:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".toml", ""}
                  and p.is_file() and "__pycache__" not in p.parts]
    return files


def test_no_file_refers_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _texts() if path.resolve() != this
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert hits == []


def test_the_upworthy_benchmarks_read_the_vendored_copy() -> None:
    from reward_upworthy import DEFAULT_DATA  # bench/, on the path (conftest.py)

    assert DEFAULT_DATA.is_file() and DEFAULT_DATA.is_relative_to(ROOT / "data" / "upworthy")
    readme = (DEFAULT_DATA.parent / "README.md").read_text()
    assert "CC BY 4.0" in readme or "Creative Commons Attribution 4.0" in readme
