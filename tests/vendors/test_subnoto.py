"""What only Subnoto has: its ACCESS_KEY:SECRET_KEY bearer and the API proxy in front of its
enclave (a start-up warning when the configuration points at the enclave itself)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.core.contract import ListQuery
from gateway.core.errors import UpstreamAuthError
from gateway.core.records import Vendor
from gateway.sandbox import Sandbox
from gateway.vendors.subnoto import enclave_warning
from tests.vendors.conftest import KEYS, Make

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)


async def test_subnoto_is_called_with_the_access_and_secret_key_as_one_bearer(
    make: Make, sb: Sandbox
) -> None:
    access, _, secret = KEYS[Vendor.SUBNOTO].partition(":")
    assert access and secret, "the sandbox's Subnoto key is ACCESS_KEY:SECRET_KEY"
    connector = make(Vendor.SUBNOTO)
    [source] = connector.sources(ListQuery())
    page = await connector.fetch_page(source, None)
    assert page.records and page.total == len(sb.store(Vendor.SUBNOTO))
    for wrong in (access, secret, f"{access}:wrong", f"{secret}:{access}"):
        with pytest.raises(UpstreamAuthError):
            await make(Vendor.SUBNOTO, secret=wrong).fetch_page(source, None)


@pytest.mark.parametrize(
    "url",
    [
        "https://enclave.subnoto.com",
        "https://SUBNOTO.com/",
        "https://eu.enclave.subnoto.com.:443/public",
        "http://api.subnoto.com:8080",
    ],
)
def test_a_base_url_on_the_enclave_gets_a_one_line_warning_about_the_proxy(url: str) -> None:
    warning = enclave_warning(url)
    assert warning is not None and "\n" not in warning
    assert "subnoto/api-proxy" in warning and "8080" in warning


@pytest.mark.parametrize(
    "url",
    [
        "http://subnoto-proxy:8080",
        "http://127.0.0.1:9000/subnoto",
        "https://subnoto.com.attacker.example",
        "https://notsubnoto.com",
        "not a url",
    ],
)
def test_other_base_urls_get_no_warning(url: str) -> None:
    assert enclave_warning(url) is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("base_url", "warns"),
    [("https://enclave.subnoto.com", True), ("http://subnoto-proxy:8080", False)],
)
def test_serve_warns_at_start_up_when_subnoto_is_the_enclave(
    tmp_path: Path, base_url: str, warns: bool
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[auth]\nopen = true\n\n[vendors.subnoto]\nbase_url = "{base_url}"\n')
    env = {**os.environ, "TASK_GATEWAY_SUBNOTO_API_KEY": "access:secret"}
    env.pop("TASK_GATEWAY_CONFIG", None)
    command = [str(PYTHON), "-m", "gateway.cli", "serve", "--config", str(config)]
    process = subprocess.Popen(
        [*command, "--port", str(_free_port())],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the server says it started
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "startup complete" in line.lower() or "uvicorn running" in line.lower():
                break
        assert "startup complete" in lines[-1].lower() or "running" in lines[-1].lower(), lines
        warnings = [line for line in lines if "subnoto/api-proxy" in line]
        assert len(warnings) == (1 if warns else 0), lines
        if warns:
            assert warnings[0].startswith("task-gateway: warning: vendors.subnoto.base_url")
            assert "access:secret" not in "".join(lines)
    finally:
        process.terminate()
        process.wait(timeout=10)
