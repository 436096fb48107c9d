"""Guardrail configuration: small validated dataclasses (pure; loading lives in ``terms``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from adgen.guardrails.text import TermMatcher, matcher

LOCALES = ("en", "zh")


@dataclass(frozen=True)
class ComplianceTerms:
    """Absolute-claim terms per locale, and per locale the words that merely contain one.

    Every locale's terms apply to every text: a claim is a claim whatever language the
    surrounding ad is in (Chinese ads often carry "NO.1" or "100%").
    """

    terms: Mapping[str, tuple[str, ...]]
    allowed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, table in (("terms", self.terms), ("allowed", self.allowed)):
            for locale, words in table.items():
                if locale not in LOCALES:
                    raise ValueError(
                        f"compliance {kind} for unknown locale {locale!r}; use one of {LOCALES}"
                    )
                bad = [w for w in words if not isinstance(w, str) or not w.strip()]
                if bad or isinstance(words, str):
                    raise ValueError(
                        f"compliance {kind} for {locale!r} must be a list of non-empty strings, "
                        f"got {words!r}"
                    )

    @cached_property
    def matcher(self) -> TermMatcher:
        """One matcher for all locales' terms, masking all locales' allowed words."""
        terms = [t for words in self.terms.values() for t in words]
        allowed = [a for words in self.allowed.values() for a in words]
        return matcher(terms, allowed)

    def extended(self, extra: Mapping[str, list[str]]) -> ComplianceTerms:
        """These terms plus ``extra`` ({locale: [terms]})."""
        merged = {loc: tuple(words) for loc, words in self.terms.items()}
        for locale, words in extra.items():
            merged[locale] = (*merged.get(locale, ()), *words)
        return ComplianceTerms(merged, self.allowed)


@dataclass(frozen=True)
class GuardrailConfig:
    """Thresholds of the guardrails; ``compliance`` holds the forbidden claim terms."""

    compliance: ComplianceTerms
    diversity_threshold: float = 0.8
    """A text at least this similar (bigram Jaccard) to another one is a near-duplicate."""
    min_chars: int = 4
    """Fewer letters or digits than this is ``too_short``."""
    min_cjk_share_zh: float = 0.6
    """A ``zh`` text needs at least this share of CJK letters."""
    max_cjk_share_en: float = 0.1
    """An ``en`` text may have at most this share of CJK letters."""
    invented_names: bool = True
    """Refuse English texts that name a product, brand or place the brief does not."""

    def __post_init__(self) -> None:
        if not 0 < self.diversity_threshold <= 1:
            raise ValueError(
                f"diversity_threshold={self.diversity_threshold} must be in (0, 1]; "
                "1.0 rejects only exact duplicates"
            )
        if self.min_chars < 1:
            raise ValueError(f"min_chars={self.min_chars} must be at least 1")
        for name in ("min_cjk_share_zh", "max_cjk_share_en"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value} must be a share in [0, 1]")
