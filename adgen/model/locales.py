"""Which base model writes which locale: a lineage per base model.

English uses ``ADGEN_BASE_MODEL`` (unset: the bundled SmolLM2-135M). Chinese uses
``ADGEN_BASE_MODEL_ZH``, else Qwen2.5-Coder-0.5B-Instruct once installed with
``adgen model install-zh``, else the English default with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from adgen.brief import Locale
from adgen.errors import ModelError
from adgen.model.loading import (
    BUNDLED_NAME,
    ZH_INSTALL_COMMAND,
    ZH_MODEL_NAME,
    bundled_gguf_path,
    cached_model_dir,
    default_dtype,
    resolve_base_model,
)
from adgen.settings import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "LOCALES",
    "LocaleModel",
    "ZH_INSTALL_COMMAND",
    "ZH_MODEL_NAME",
    "base_model_for_locale",
    "locale_models",
    "zh_model_installed",
]

LOCALES: tuple[str, ...] = get_args(Locale)


def zh_model_installed(settings: Settings) -> bool:
    """True when the Chinese model's converted safetensors folder is in the cache."""
    return (cached_model_dir(settings.cache_dir, ZH_MODEL_NAME) / "config.json").is_file()


def base_model_for_locale(settings: Settings, locale: str) -> str:
    """The base-model name (lineage key, accepted by ``resolve_base_model``) for ``locale``.

    A local folder is named by its resolved path, as ``resolve_base_model`` names it, so
    that one base model is one lineage however its path was written.
    """
    english = _lineage_key(settings.base_model or BUNDLED_NAME)
    if locale != "zh":
        return english
    if settings.base_model_zh:
        return _lineage_key(settings.base_model_zh)
    if zh_model_installed(settings):
        return ZH_MODEL_NAME
    logger.warning(
        "the Chinese base model is not installed; zh campaigns fall back to %s, which writes "
        "poor Chinese. Install it with: %s",
        english,
        ZH_INSTALL_COMMAND,
    )
    return english


def _lineage_key(name: str) -> str:
    local = Path(name).expanduser()
    return str(local.resolve()) if local.is_dir() else name


@dataclass(frozen=True)
class LocaleModel:
    """Which base model serves a locale, and whether its weights are there."""

    locale: str
    base_model: str
    dtype: str
    installed: bool
    path: Path | None
    note: str


def locale_models(settings: Settings) -> list[LocaleModel]:
    """One row per locale: its base model, dtype, and whether it is installed."""
    rows = []
    for locale in LOCALES:
        name = base_model_for_locale(settings, locale)
        installed, path, note = _weights_status(settings, name)
        if locale == "zh" and name != ZH_MODEL_NAME and not settings.base_model_zh:
            note = f"fallback to the English model; install Chinese with: {ZH_INSTALL_COMMAND}"
        rows.append(LocaleModel(locale, name, default_dtype(name), installed, path, note))
    return rows


def _weights_status(settings: Settings, name: str) -> tuple[bool, Path | None, str]:
    if name == BUNDLED_NAME:
        folder = cached_model_dir(settings.cache_dir, BUNDLED_NAME)
        if (folder / "config.json").is_file():
            return True, folder, "cached safetensors"
        try:
            return True, bundled_gguf_path(), "bundled GGUF, converted on first use"
        except ModelError as exc:
            return False, None, str(exc)
    try:  # no conversion happens for any other name: this only looks
        resolved = resolve_base_model(name, settings.cache_dir)
    except ModelError as exc:
        return False, None, str(exc)
    return True, resolved.path, "cached safetensors" if name == ZH_MODEL_NAME else "local folder"
