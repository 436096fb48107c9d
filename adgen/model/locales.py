"""Which base model writes which locale: a lineage per base model.

English uses ``ADGEN_BASE_MODEL`` (unset: the bundled SmolLM2-135M). Chinese uses
``ADGEN_BASE_MODEL_ZH``, else Qwen2.5-Coder-0.5B-Instruct once installed with
``adgen model install-zh``, else the English default with a warning.
"""

from __future__ import annotations

import logging

from adgen.model.loading import BUNDLED_NAME
from adgen.settings import Settings

logger = logging.getLogger(__name__)

ZH_MODEL_NAME = "qwen2.5-coder-0.5b-instruct"
ZH_INSTALL_COMMAND = "make install-zh  (or: adgen model install-zh)"


def zh_model_installed(settings: Settings) -> bool:
    """True when the Chinese model's converted safetensors folder is in the cache."""
    return (settings.cache_dir / "models" / ZH_MODEL_NAME / "config.json").is_file()


def base_model_for_locale(settings: Settings, locale: str) -> str:
    """The base-model name (lineage key, accepted by ``resolve_base_model``) for ``locale``."""
    english = settings.base_model or BUNDLED_NAME
    if locale != "zh":
        return english
    if settings.base_model_zh:
        return settings.base_model_zh
    if zh_model_installed(settings):
        return ZH_MODEL_NAME
    logger.warning(
        "the Chinese base model is not installed; zh campaigns fall back to %s, which writes "
        "poor Chinese. Install it with: %s",
        english,
        ZH_INSTALL_COMMAND,
    )
    return english
