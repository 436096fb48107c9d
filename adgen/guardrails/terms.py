"""Loading the compliance term lists: the built-ins under ``adgen/data/`` plus an optional
JSON file named by ``ADGEN_COMPLIANCE_TERMS_FILE`` ({locale: [terms]})."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from adgen.errors import ConfigError
from adgen.guardrails.config import LOCALES, ComplianceTerms, GuardrailConfig
from adgen.settings import Settings


def _builtin(locale: str) -> dict[str, Any]:
    raw = resources.files("adgen").joinpath("data", f"compliance_{locale}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


def builtin_terms() -> ComplianceTerms:
    """The built-in absolute-claim terms of every locale."""
    files = {locale: _builtin(locale) for locale in LOCALES}
    return ComplianceTerms(
        terms={loc: tuple(d["terms"]) for loc, d in files.items()},
        allowed={loc: tuple(d.get("allowed", ())) for loc, d in files.items()},
    )


def load_extra_terms(path: Path) -> dict[str, list[str]]:
    """Read an extension file ``{locale: [terms]}``; ConfigError says what is wrong."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"ADGEN_COMPLIANCE_TERMS_FILE {path} cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"ADGEN_COMPLIANCE_TERMS_FILE {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(t, str) and t.strip() for t in v)
        for v in data.values()
    ):
        raise ConfigError(
            f"ADGEN_COMPLIANCE_TERMS_FILE {path} must hold an object of locale to a list of "
            'non-empty strings, e.g. {"en": ["unbeatable"], "zh": ["全网最低"]}'
        )
    unknown = sorted(set(data) - set(LOCALES))
    if unknown:
        raise ConfigError(
            f"ADGEN_COMPLIANCE_TERMS_FILE {path} names unknown locales {unknown}; use {LOCALES}"
        )
    return data


def config_from_settings(settings: Settings) -> GuardrailConfig:
    """The guardrail configuration in force: built-in terms (+ the extension file), the
    diversity threshold and the ``invented_name`` switch from settings."""
    terms = builtin_terms()
    if settings.compliance_terms_file is not None:
        terms = terms.extended(load_extra_terms(settings.compliance_terms_file))
    return GuardrailConfig(
        compliance=terms,
        diversity_threshold=settings.diversity_threshold,
        invented_names=settings.guard_invented_names,
    )
