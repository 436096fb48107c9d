"""docker-compose.yml: every service's entry point exists, settings are real, secrets required."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from adgen.settings import Settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
SECRETS = {"ADGEN_ADMIN_TOKEN": "x", "ADGEN_TOKEN_SECRET": "y", "POSTGRES_PASSWORD": "z"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def test_stack_has_the_production_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "kafka", "migrate", "api", "ingest", "trainer"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert _command(services["migrate"]) == ["adgen", "db", "upgrade"]
    for name in ("postgres", "kafka", "api", "ingest", "trainer"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name in ("api", "ingest", "trainer"):
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"


def test_every_python_module_entry_point_exists(compose: dict[str, Any]) -> None:
    modules = {}
    for name, service in compose["services"].items():
        command = _command(service)
        if command[:2] == ["python", "-m"]:
            modules[name] = command[2]
    assert set(modules) == {"api", "ingest", "trainer"}
    for name, module in modules.items():
        path = REPO / Path(*module.split(".")).with_suffix(".py")
        assert path.is_file(), f"service {name!r} runs {module}, but {path} does not exist"
        assert 'if __name__ == "__main__":' in path.read_text(), f"{path} has no main guard"
    dockerfile = REPO / compose["services"]["api"]["build"] / "Dockerfile"
    assert dockerfile.is_file()


def test_adgen_variables_are_settings_and_secrets_are_required(compose: dict[str, Any]) -> None:
    fields = {f"ADGEN_{name.upper()}" for name in Settings.model_fields}
    seen: set[str] = set()
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("ADGEN_"):
                assert key in fields, f"{name}: {key} is not a setting of adgen.settings"
                seen.add(key)
                if key in ("ADGEN_ADMIN_TOKEN", "ADGEN_TOKEN_SECRET"):
                    assert re.fullmatch(rf"\$\{{{key}:\?.+\}}", str(value)), \
                        f"{key} must be required (${{{key}:?...}}), not defaulted"
    assert {"ADGEN_DATABASE_URL", "ADGEN_KAFKA_BOOTSTRAP", "ADGEN_ADMIN_TOKEN",
            "ADGEN_TOKEN_SECRET"} <= seen


def test_docker_compose_accepts_the_file() -> None:
    """Runs Debian's ``docker-compose config -q`` (no engine needed), as CI does; skipped,
    and reported as such, where docker-compose is not installed."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    ok = subprocess.run([binary, "config", "-q"], cwd=REPO, env={**env, **SECRETS},
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([binary, "config", "-q"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0
    assert "ADGEN_ADMIN_TOKEN" in missing.stderr or "POSTGRES_PASSWORD" in missing.stderr
