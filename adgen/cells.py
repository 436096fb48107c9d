"""Cells of a contextual campaign: which cell a request's context falls in (pure).

A campaign that allocates on the attributes ``(a1, a2, ...)`` has one cell per combination
of their values, named ``a1=v1|a2=v2`` in the campaign's attribute order (the name is what
``events.cell``, ``cell_stats`` and ``allocation_snapshots.cell`` store). Values are
categorical: strings as given, booleans as ``true``/``false``, numbers as written. A request
that lacks one of the attributes, gives it ``null`` or ``""``, or a value containing ``|``
or ``=`` (which would make the name ambiguous) falls back to the campaign level (no cell).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: Longest cell name stored (``events.cell`` is a 200-character column).
MAX_CELL_NAME = 200
#: Most attributes a campaign may allocate on (each multiplies the cells).
MAX_ATTRIBUTES = 4
#: Highest cap on a campaign's cells.
MAX_CELLS_CAP = 1000
_FORBIDDEN = ("|", "=")

CellKey = tuple[str, ...]


def value_text(value: object) -> str | None:
    """The categorical text of a context value (None when it cannot name a cell)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        return None
    if not text or "|" in text or "=" in text:
        return None
    return text


def cell_key(context: Mapping[str, object] | None, attributes: Sequence[str]) -> CellKey | None:
    """The cell of ``context`` as a tuple of value texts, or None for the campaign level."""
    if not context or not attributes:
        return None
    key = []
    for attribute in attributes:
        value = context.get(attribute)
        if type(value) is str and value and "|" not in value and "=" not in value:
            key.append(value)  # the common case, without a call (the decision path)
            continue
        text = value_text(value)
        if text is None:
            return None
        key.append(text)
    return tuple(key)


def cell_name(attributes: Sequence[str], key: CellKey) -> str:
    """The stored name of the cell ``key`` (``a1=v1|a2=v2``)."""
    return "|".join(f"{a}={v}" for a, v in zip(attributes, key, strict=True))


def parse_cell(name: str, attributes: Sequence[str]) -> CellKey | None:
    """The key of a stored cell name, or None when it names other attributes."""
    parts = [p.split("=", 1) for p in name.split("|")] if name else []
    if len(parts) != len(attributes) or any(len(p) != 2 for p in parts):
        return None
    if [p[0] for p in parts] != list(attributes):
        return None
    return tuple(p[1] for p in parts)


def check_attributes(attributes: Sequence[str]) -> list[str]:
    """Validated attribute names (ValueError naming the problem)."""
    names = list(attributes)
    if len(names) > MAX_ATTRIBUTES:
        raise ValueError(
            f"at most {MAX_ATTRIBUTES} context attributes, got {len(names)}: every extra "
            "attribute multiplies the cells and divides their traffic"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"context attributes must be distinct, got {names}")
    for name in names:
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise ValueError(f"a context attribute must be a name of 1-64 characters, got {name!r}")
        if any(c in name for c in _FORBIDDEN):
            raise ValueError(f"a context attribute must not contain '|' or '=', got {name!r}")
    return names
