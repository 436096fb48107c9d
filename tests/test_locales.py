"""Which base model serves which locale, and the ``adgen model`` commands."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adgen.cli.main import app
from adgen.model.loading import BUNDLED_NAME, ZH_INSTALL_COMMAND, ZH_MODEL_NAME
from adgen.model.locales import base_model_for_locale, locale_models, zh_model_installed
from adgen.settings import Settings, get_settings


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(var_dir=tmp_path / "var", cache_dir=tmp_path / "cache", **kw)


def _fake_zh_install(settings: Settings) -> Path:
    folder = settings.cache_dir / "models" / ZH_MODEL_NAME
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_english_keeps_the_small_model_and_chinese_falls_back_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path)
    assert not zh_model_installed(settings)
    assert base_model_for_locale(settings, "en") == BUNDLED_NAME
    with caplog.at_level(logging.WARNING, logger="adgen.model.locales"):
        assert base_model_for_locale(settings, "zh") == BUNDLED_NAME
    assert ZH_INSTALL_COMMAND in caplog.text


def test_chinese_uses_qwen_once_installed_and_english_does_not_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path)
    _fake_zh_install(settings)
    with caplog.at_level(logging.WARNING, logger="adgen.model.locales"):
        assert base_model_for_locale(settings, "zh") == ZH_MODEL_NAME
        assert base_model_for_locale(settings, "en") == BUNDLED_NAME
    assert caplog.text == ""


def test_settings_choose_each_locale_s_model_and_a_folder_is_named_by_its_real_path(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    settings = _settings(tmp_path, base_model=str(folder / ".." / "my-model"), base_model_zh="x/y")
    assert base_model_for_locale(settings, "en") == str(folder.resolve())
    assert base_model_for_locale(settings, "zh") == "x/y"


def test_locale_models_say_what_is_installed(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    rows = {r.locale: r for r in locale_models(settings)}
    assert rows["en"].base_model == BUNDLED_NAME and rows["en"].dtype == "float32"
    assert rows["en"].installed  # the bundled GGUF, converted on first use
    assert rows["zh"].base_model == BUNDLED_NAME and ZH_INSTALL_COMMAND in rows["zh"].note

    folder = _fake_zh_install(settings)
    rows = {r.locale: r for r in locale_models(settings)}
    assert (rows["zh"].base_model, rows["zh"].dtype, rows["zh"].installed, rows["zh"].path) == (
        ZH_MODEL_NAME,
        "bfloat16",
        True,
        folder,
    )

    missing = _settings(tmp_path, base_model_zh=str(tmp_path / "nowhere"))
    zh = next(r for r in locale_models(missing) if r.locale == "zh")
    assert not zh.installed and "adgen never downloads" in zh.note


@pytest.fixture
def env_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("ADGEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ADGEN_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_cli_lists_models_and_a_second_install_does_nothing(env_cache: Settings) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["model", "list"], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert "Base model per locale" in listed.output and "fallback" in listed.output

    _fake_zh_install(env_cache)
    again = runner.invoke(app, ["model", "install-zh"], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert "already installed; nothing to do" in again.output
    assert ZH_MODEL_NAME in again.output and "bfloat16" in again.output
