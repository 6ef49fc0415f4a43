"""The GraphQL-over-HTTP reference audit (npm ``graphql-http``'s ``serverAudits``), run with
Node against the demo gateway over loopback: every audit passes, none warns or notes.

``scripts/test.sh`` installs Node (when missing) and the pinned package into ``.tools/node``;
without them this test fails and says so, rather than skipping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import GatewayClient

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("audit") / "graphql_http_audit.mjs"
NODE_MODULES = ROOT / ".tools" / "node" / "node_modules"
PINNED = re.search(
    r"^GRAPHQL_HTTP_VERSION=(\S+)$", (ROOT / "scripts" / "test.sh").read_text(), re.MULTILINE
)
"""The version scripts/test.sh installs (the audit's checks change between versions)."""


def run_audit(url: str) -> dict[str, object]:
    node = shutil.which("node")
    assert node, "Node.js is missing: run scripts/test.sh, which installs it"
    package = NODE_MODULES / "graphql-http" / "package.json"
    assert package.exists(), "graphql-http is missing: run scripts/test.sh, which installs it"
    assert PINNED is not None
    assert json.loads(package.read_text())["version"] == PINNED[1]
    finished = subprocess.run(
        [node, str(SCRIPT), url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    report: dict[str, object] = json.loads(finished.stdout)
    return report


def test_the_reference_audit_passes_without_warnings_or_notices(gateway: GatewayClient) -> None:
    report = run_audit(f"{gateway.url}/graphql")
    assert PINNED is not None and report["version"] == PINNED[1]
    assert report["problems"] == []
    counts = report["counts"]
    assert isinstance(counts, dict)
    assert counts["warn"] == counts["notice"] == counts["error"] == 0
    assert counts["ok"] >= 61  # every audit of this version
