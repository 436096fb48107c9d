"""Converting the bundled GGUF into the model cache, when another process got there first
(processes that start together on a fresh machine each convert): the real bundled model."""

from __future__ import annotations

from pathlib import Path

import pytest

from adgen.errors import ModelError
from adgen.model.loading import bundled_gguf_path, convert_gguf


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name)


def test_a_copy_another_process_placed_first_is_kept_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "smollm2-135m-instruct"
    out.mkdir()
    (out / "config.json").write_text("{}")  # the other process's finished copy
    (out / "in-use").write_text("a reader has this copy open")
    assert convert_gguf(bundled_gguf_path(), out) == out
    assert (out / "in-use").is_file()  # not removed under its reader
    assert _leftovers(out) == []  # our own copy is discarded


def test_a_folder_in_the_way_with_no_model_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "smollm2-135m-instruct"
    out.mkdir()
    (out / "notes.txt").write_text("not a model")
    with pytest.raises(ModelError, match="in the way and holds no converted model"):
        convert_gguf(bundled_gguf_path(), out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert _leftovers(out) == []

