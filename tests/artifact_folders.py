"""An adapter-like folder to store as an artifact, and a folder's files to compare copies."""

from __future__ import annotations

from pathlib import Path


def adapter_like(root: Path) -> Path:
    """``root/adapter``: a config, some binary weights and a nested file."""
    folder = root / "adapter"
    (folder / "sub").mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"r": 4}')
    (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 40)
    (folder / "sub" / "note.txt").write_text("nested")
    return folder


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (relative POSIX path -> bytes)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
