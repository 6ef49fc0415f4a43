"""Configuration: TOML plus environment, checked once; a mistake is one line naming it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from gateway.config import ConfigError, load_settings, parse_settings
from gateway.core.records import TaskStatus, Vendor

BASE = {"auth": {"api_keys": ["k"]}}


def settings(data: dict, env: dict | None = None):
    return parse_settings({**BASE, **data}, env or {})


@pytest.mark.parametrize(
    ("data", "env", "message"),
    [
        ({"vendors": {"zapier": {}}}, {}, "vendors.zapier: unknown vendor"),
        (
            {"vendors": {"orq": {"base_url": "ftp://x", "agents": ["a"]}}},
            {"TASK_GATEWAY_ORQ_API_KEY": "s"},
            "vendors.orq.base_url:",
        ),
        (
            {"vendors": {"xpander": {"base_url": "https://api.xpander.ai", "agents": ["a"]}}},
            {},
            "vendors.xpander.api_key: missing (set TASK_GATEWAY_XPANDER_API_KEY)",
        ),
        (
            {"vendors": {"orq": {"base_url": "https://api.orq.ai"}}},
            {"TASK_GATEWAY_ORQ_API_KEY": "s"},
            "vendors.orq.agents:",
        ),
        (
            {"vendors": {"agentex": {"base_url": "https://a", "status_map": {"x": "DONE"}}}},
            {},
            "vendors.agentex.status_map.x:",
        ),
        ({"cache": {"url": "memcached://x"}}, {}, "cache.url:"),
        ({"vendors": {"agentex": {"base_url": "https://u:p@a"}}}, {}, "vendors.agentex.base_url"),
        (
            {"vendors": {"agentex": {"base_url": "https://a", "timeout": "fast"}}},
            {},
            "vendors.agentex.timeout:",
        ),
    ],
)
def test_a_mistake_names_the_setting(data, env, message) -> None:
    with pytest.raises(ConfigError) as error:
        settings(data, env)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_serve_refuses_to_run_open_unless_told() -> None:
    with pytest.raises(ConfigError, match=r"^auth\.api_keys"):
        parse_settings({}, {})
    assert parse_settings({"auth": {"open": True}}, {}).open_access
    assert parse_settings({}, {"TASK_GATEWAY_API_KEYS": "a, b"}).api_keys == ("a", "b")


def test_secrets_and_vendors_from_the_environment() -> None:
    parsed = settings(
        {},
        {
            "TASK_GATEWAY_XPANDER_BASE_URL": "https://api.xpander.ai/",
            "TASK_GATEWAY_XPANDER_API_KEY": "xp-secret",
            "TASK_GATEWAY_XPANDER_AGENTS": "a1, a2",
            "TASK_GATEWAY_CACHE_URL": "redis://127.0.0.1:6379/0",
        },
    )
    xpander = parsed.vendors[Vendor.XPANDER]
    assert xpander.enabled and xpander.base_url == "https://api.xpander.ai"
    assert xpander.agents == ("a1", "a2")
    assert xpander.credentials.headers() == {"x-api-key": "xp-secret"}
    assert "xp-secret" not in repr(xpander)
    assert not parsed.vendors[Vendor.ORQ].enabled
    assert parsed.cache_url == "redis://127.0.0.1:6379/0"


def test_the_agentex_status_map_can_be_extended(tmp_path) -> None:
    config = tmp_path / "g.toml"
    config.write_text(
        '[auth]\nopen = true\n[vendors.agentex]\nbase_url = "https://a"\n'
        '[vendors.agentex.status_map]\nReticulating = "running"\n'
    )
    parsed = load_settings(config, env={})
    assert parsed.vendors[Vendor.AGENTEX].status_map == {"reticulating": TaskStatus.RUNNING}


def test_serve_stops_with_one_line_on_a_bad_config(tmp_path) -> None:
    config = tmp_path / "g.toml"
    config.write_text(
        '[auth]\nopen = true\n[vendors.orq]\nbase_url = "https://api.orq.ai"\nagents = ["a"]\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "task-gateway: vendors.orq.api_key: missing (set TASK_GATEWAY_ORQ_API_KEY)"
    )


def test_schema_command_prints_the_sdl() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "schema"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and "type Query" in result.stdout


def test_the_sandbox_command_serves_all_four_vendors_with_knobs_and_progress() -> None:
    import time

    import httpx

    from tests.redis_server import free_port

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "sandbox",
            "--port",
            str(port),
            "--size",
            "20",
            "--latency-ms",
            "30",
            "--malformed-rate",
            "0.5",
            "--progress-seconds",
            "0.2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                knobs = httpx.get(f"{base}/orq/_sandbox/knobs").json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert knobs["latency_ms"] == 30 and knobs["malformed_rate"] == 0.5
        httpx.patch(f"{base}/agentex/_sandbox/knobs", json={"malformed_rate": 0})
        first = {t["id"]: t["status"] for t in httpx.get(f"{base}/agentex/tracker").json()}
        time.sleep(0.6)
        later = {t["id"]: t["status"] for t in httpx.get(f"{base}/agentex/tracker").json()}
        assert first != later, "--progress-seconds moves live tasks on"
    finally:
        process.terminate()
        process.wait(10)


def test_every_setting_is_in_the_operators_reference() -> None:
    """A setting the code accepts and the reference does not name is one nobody can find."""
    from pathlib import Path

    from gateway.config import SECTIONS, VENDOR_KEYS

    reference = (Path(__file__).parent.parent / "docs" / "operating.md").read_text()
    settings_table = reference.split("### Settings", 1)[1].split("\n### ", 1)[0]
    named = set(re.findall(r"`([a-z_.<>]+)`", settings_table))
    short = {name.rsplit(".", 1)[-1] for name in named}
    for section, keys in {**SECTIONS, "vendors.<v>": VENDOR_KEYS}.items():
        for name in keys:
            assert f"{section}.{name}" in named or name in short, f"{section}.{name}"
