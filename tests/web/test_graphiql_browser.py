"""GraphiQL end to end: headless Chromium (Debian's package) opens the demo's page, runs the
pre-filled example query and shows tasks of all four vendors. Works offline: every asset
comes from the gateway itself."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import sync_playwright

from gateway.core.records import Vendor
from tests.conftest import GatewayClient

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_example_query_runs_in_graphiql(gateway: GatewayClient, tmp_path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
            page.goto(f"{gateway.url}/graphql", wait_until="networkidle")
            assert failed == [], f"assets that did not load: {failed}"
            editor = page.locator(".graphiql-query-editor")
            editor.wait_for(timeout=15_000)
            assert "RecentTasks" in editor.inner_text()
            page.locator(".graphiql-execute-button").click()
            page.wait_for_function(
                "() => document.querySelector('.graphiql-response')?.innerText.includes('vendor')",
                timeout=20_000,
            )
            # The pane shows only the lines in view: read the whole answer from its editor.
            text = page.evaluate(
                "() => document.querySelector('.graphiql-response .CodeMirror')"
                ".CodeMirror.getValue()"
            )
            page.screenshot(path=str(tmp_path / "graphiql.png"))
        finally:
            browser.close()
    assert failed == [], f"assets that did not load: {failed}"
    for vendor in Vendor:
        assert f'"{vendor.name}"' in text, f"{vendor.name} missing from the result pane"
    assert '"errors"' not in text


@pytest.fixture(scope="module")
def gateway(make_gateway) -> GatewayClient:
    return make_gateway()
