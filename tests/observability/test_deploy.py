"""The deployable package, checked without a Docker engine: the image runs the gateway as a
non-root user with a health check, and the compose example is consistent with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from gateway.cli import SHUTDOWN_GRACE_SECONDS
from gateway.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "TASK_GATEWAY_API_KEYS": "client-key",
    "TASK_GATEWAY_XPANDER_API_KEY": "x",
    "TASK_GATEWAY_ORQ_API_KEY": "o",
    "TASK_GATEWAY_SUBNOTO_API_KEY": "s",
}


def instructions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.setdefault(word.upper(), []).append(rest.strip())
    return found


def test_the_image_is_slim_non_root_and_health_checked() -> None:
    docker = instructions()
    assert docker["FROM"] == ["python:3.11-slim"]
    [user] = docker["USER"]
    assert user not in ("root", "0")
    assert any("pip install" in run for run in docker["RUN"])
    [health] = docker["HEALTHCHECK"]
    assert "/healthz" in health and "python" in health
    [cmd] = docker["CMD"]
    argv = json.loads(cmd)
    assert argv[:2] == ["task-gateway", "serve"] and "0.0.0.0" in argv


def test_the_image_gets_only_what_it_needs() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", "tests", "bench"} <= set(ignored)
    copied = " ".join(instructions()["COPY"])
    assert "gateway" in copied and "pyproject.toml" in copied


def test_compose_runs_two_replicas_on_redis_behind_a_balancer() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    gateway = services["gateway"]
    assert gateway["deploy"]["replicas"] == 2
    assert gateway["environment"]["TASK_GATEWAY_CACHE_URL"].startswith("redis://redis:")
    assert "redis" in gateway["depends_on"] and "redis" in services
    grace = int(gateway["stop_grace_period"].rstrip("s"))
    assert grace > SHUTDOWN_GRACE_SECONDS
    balancer = services["lb"]
    assert any("nginx.conf" in volume for volume in balancer["volumes"])
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server gateway:8000" in nginx and "Upgrade" in nginx


def test_the_example_settings_load_with_secrets_from_the_environment() -> None:
    settings = load_settings(ROOT / "deploy" / "example.toml", SECRETS)
    assert settings.cache_url == "redis://redis:6379/0"
    assert len(settings.enabled) == 4 and not settings.tracing
    assert "api_key" not in (ROOT / "deploy" / "example.toml").read_text()
