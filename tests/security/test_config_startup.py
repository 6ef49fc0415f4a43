"""Issue 14, item 16: a bad configuration or persisted-query manifest stops ``serve`` with
one line on stderr and exit status 2: never a traceback, never a secret."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_settings

KEY = "MySecretKey-42-do-not-print"
QUERY = "query Recent { tasks(first: 5) { nodes { id } } }"


def serve(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def manifest_setting(path: Path) -> dict:
    return {"auth": {"open": True}, "graphql": {"persisted_queries": str(path)}}


BAD_MANIFESTS: dict[str, bytes] = {
    "not json": b"{operations: [",
    "not utf-8": b'{"\xff\xfe": "query { vendors { vendor } }"}',
    "a list": json.dumps([{"id": "a", "body": QUERY}]).encode(),
    "a string": b'"query { x }"',
    "operations not objects": json.dumps({"operations": [1, "x"]}).encode(),
    "operation without body": json.dumps({"operations": [{"id": "a"}]}).encode(),
    "operation id not text": json.dumps({"operations": [{"id": 1, "body": QUERY}]}).encode(),
    "operation id a list": json.dumps({"operations": [{"id": ["a"], "body": QUERY}]}).encode(),
    "body not text": json.dumps({"operations": [{"id": "a", "body": {"q": 1}}]}).encode(),
    "map to numbers": json.dumps({"a": 1}).encode(),
    "empty map": b"{}",
    "no operations": json.dumps({"operations": []}).encode(),
    "empty body": json.dumps({"a": "  "}).encode(),
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "empty file": b"",
}


@pytest.mark.parametrize("content", BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_a_bad_manifest_is_refused_in_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as error:
        parse_settings(manifest_setting(path), {})
    assert str(error.value).startswith("graphql.persisted_queries: ")
    assert "\n" not in str(error.value)


def test_a_missing_or_unreadable_manifest_is_refused(tmp_path: Path) -> None:
    for path, reason in ((tmp_path / "absent.json", "not found"), (tmp_path, "cannot read")):
        with pytest.raises(ConfigError, match=f"^graphql.persisted_queries: .*{reason}"):
            parse_settings(manifest_setting(path), {})


def test_both_manifest_shapes_load(tmp_path: Path) -> None:
    for shape in ({"operations": [{"id": "abc", "body": QUERY}]}, {"abc": QUERY}):
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps(shape))
        assert parse_settings(manifest_setting(path), {}).persisted_queries == str(path)


@pytest.mark.parametrize(
    ("toml", "manifest", "line"),
    [
        ('cors = "x"\n[auth]\nopen = true\n', None, "cors: must be a table ([cors]), not a string"),
        (
            "[auth]\nopen = true\n[graphql]\npersisted_queries = '{manifest}'\n",
            b'{"operations": [{"id": 1}]}',
            "graphql.persisted_queries: ",
        ),
        (
            "[auth]\nopen = true\n[graphql]\npersisted_queries = '{manifest}'\n",
            b"not json at all",
            "graphql.persisted_queries: ",
        ),
        (
            f'[auth]\nopen = "false"\napi_keys = "{KEY}"\n',
            None,
            "auth.api_keys: must be an array of non-empty strings",
        ),
        (
            f'[vendors.orq]\ntimeuot = 3\napi_key = "{KEY}"\n[auth]\napi_keys = ["{KEY}"]\n',
            None,
            "vendors.orq.timeuot: unknown setting",
        ),
        ("[auth]\nopen = true\n[[vendors]]\n", None, "vendors: must be a table"),
        ("[auth\nopen = true\n", None, "config: "),
        (b"[auth]\nopen = true # \xff\n", None, "config: "),
    ],
)
def test_serve_stops_with_one_line_and_no_secret(
    tmp_path: Path, toml: str | bytes, manifest: bytes | None, line: str
) -> None:
    manifest_path = tmp_path / "manifest.json"
    if manifest is not None:
        manifest_path.write_bytes(manifest)
    config = tmp_path / "gateway.toml"
    if isinstance(toml, bytes):
        config.write_bytes(toml)
    else:
        config.write_text(toml.replace("{manifest}", str(manifest_path)))
    result = serve(config)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"task-gateway: {line}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert KEY not in result.stderr + result.stdout


def test_serve_refuses_a_directory_as_its_config(tmp_path: Path) -> None:
    result = serve(tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("task-gateway: config: cannot read")
    assert result.stderr.count("\n") == 1
