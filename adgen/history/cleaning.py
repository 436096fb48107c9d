"""Cleaning of imported ad texts: HTML tags and entities out, whitespace collapsed (pure)."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]*>")


def clean_text(raw: str | None) -> str:
    """``raw`` without HTML tags or entities, with runs of whitespace made one space.

    Tags become a space (``a<br>b`` is ``a b``); the result is stripped, and empty when
    nothing readable is left.
    """
    if not raw:
        return ""
    text = html.unescape(_TAG.sub(" ", raw))
    return " ".join(text.split())
