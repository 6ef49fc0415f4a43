"""Structured logs: one JSON line per GraphQL request, request ids, and never a secret."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from gateway.core.records import Vendor
from gateway.observability.logging import (
    QUIET_LOGGERS,
    REDACTED,
    BufferedStreamHandler,
    JsonFormatter,
    TextFormatter,
    redact,
    setup_logging,
    sole_json_handler,
)
from tests.conftest import GatewayFactory

QUERY = "query Recent { tasks(first: 5) { nodes { id vendor } } }"
CLIENT_KEY = "client-secret-key-0042"
WRONG_ORQ_KEY = "orq-wrong-secret-0099"
FORWARDED_KEY = "caller-xpander-secret-0077"


@pytest.fixture
def json_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything logged while the test runs, formatted as the gateway formats it."""
    caplog.set_level(logging.DEBUG)
    caplog.handler.setFormatter(JsonFormatter())
    yield caplog


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in caplog.text.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "gateway.request"]


def test_one_json_line_per_request_and_never_a_secret(
    make_gateway: GatewayFactory, settings, clean_sandbox, json_logs
) -> None:
    vendors = dict(settings.vendors)
    orq = vendors[Vendor.ORQ]
    vendors[Vendor.ORQ] = replace(orq, credentials=replace(orq.credentials, secret=WRONG_ORQ_KEY))
    gateway = make_gateway(
        open_access=False,
        api_keys=(CLIENT_KEY,),
        vendors=vendors,
        forward_vendor_credentials=True,
    )
    clean_sandbox.knobs(Vendor.SUBNOTO).error_rate = 1.0
    key = {"authorization": f"Bearer {CLIENT_KEY}"}
    responses = [
        gateway.http.post(
            "/graphql", json={"query": QUERY}, headers={**key, "x-request-id": "r-1"}
        ),
        gateway.http.post("/graphql", json={"query": "{ nope }"}, headers=key),
        gateway.http.post("/graphql", json={"query": "{ tasks(first: "}, headers=key),
        gateway.http.post(
            "/graphql",
            json={"query": QUERY},
            headers={**key, "x-vendor-key-xpander": FORWARDED_KEY, "x-request-id": "r-4"},
        ),
        gateway.http.post("/graphql", json={"query": QUERY}, headers={"authorization": "Bearer x"}),
        gateway.http.get("/readyz"),
        gateway.http.get("/metrics"),
    ]
    assert responses[0].headers["x-request-id"] == "r-1"
    assert responses[4].status_code == 401

    lines = request_lines(json_logs)
    assert len(lines) == 4, "one line per GraphQL request that reached the graph"
    first = next(line for line in lines if line["request_id"] == "r-1")
    assert first["operation"] == "Recent" and first["outcome"] == "partial"
    assert first["missing_vendors"] == ["ORQ", "SUBNOTO"]
    assert first["error_codes"] == ["UPSTREAM_AUTH", "UPSTREAM_UNAVAILABLE"]
    assert first["vendors"] == sorted(v.name for v in Vendor)
    assert first["cache"] == {"AGENTEX": "miss", "XPANDER": "miss"}
    assert first["duration_ms"] > 0 and first["response_cache"] is False
    assert {"error"} <= {line["outcome"] for line in lines}
    assert [line["error_codes"] for line in lines if line["outcome"] == "error"]

    secrets = [
        CLIENT_KEY,
        WRONG_ORQ_KEY,
        FORWARDED_KEY,
        *(c.credentials.secret for c in settings.vendors.values() if c.credentials),
    ]
    everything = json_logs.text + "".join(r.text + str(r.headers) for r in responses)
    for secret in secrets:
        assert secret not in everything


def test_a_response_cache_hit_is_logged_too(make_gateway: GatewayFactory, json_logs) -> None:
    gateway = make_gateway()
    gateway.data(QUERY)
    answer = gateway.http.post("/graphql", json={"query": QUERY})
    lines = request_lines(json_logs)
    assert [line["response_cache"] for line in lines] == [False, True]
    assert lines[1]["request_id"] == answer.headers["x-request-id"]
    assert lines[1]["operation"] == "Recent" and lines[1]["outcome"] == "ok"


def test_an_unexpected_error_is_logged_under_the_request_id_without_secrets(
    make_gateway: GatewayFactory, json_logs
) -> None:
    gateway = make_gateway()
    upstream = gateway.server.server.config.app.state.gateway.service.upstream  # type: ignore[attr-defined]

    def broken(vendor: Vendor) -> None:
        raise RuntimeError("boom while sending Authorization: Bearer leaked-token-0066")

    upstream.circuit_state = broken
    response = gateway.http.post(
        "/graphql", json={"query": "{ vendors { vendor } }"}, headers={"x-request-id": "r-err"}
    )
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "r-err"}
    assert "leaked-token-0066" not in response.text
    lines = [orjson.loads(line) for line in json_logs.text.splitlines() if "r-err" in line]
    [logged] = [line for line in lines if line["level"] == "error"]
    assert logged["error"] == "RuntimeError" and "boom" in logged["detail"]
    [request] = [line for line in lines if line["logger"] == "gateway.request"]
    assert request["error_codes"] == ["INTERNAL_SERVER_ERROR"]
    assert "leaked-token-0066" not in json_logs.text


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123.x:y_z", True),
        ("", False),
        ("has spaces", False),
        ("x" * 65, False),
        ('{"json":1}', False),
    ],
)
def test_a_sane_request_id_is_kept_else_one_is_made(gateway, given: str, kept: bool) -> None:
    response = gateway.http.get("/healthz", headers={"x-request-id": given} if given else {})
    request_id = response.headers["x-request-id"]
    assert (request_id == given) is kept
    assert 1 <= len(request_id) <= 64


def test_redact_masks_keys_tokens_and_url_passwords() -> None:
    text = (
        "Authorization: Bearer sk-abc.def "
        "x-api-key=xk_123 {'api_key': 'ak-9'} "
        "redis://:hunter2@cache:6379/0 password=pw1 "
        '{"secret":"s3"} Illegal header value b\'Bearer tok-7\''
    )
    masked = redact(text)
    for secret in ("sk-abc.def", "xk_123", "ak-9", "hunter2", "pw1", "s3", "tok-7"):
        assert secret not in masked
    assert masked.count(REDACTED) >= 7
    assert "redis://[redacted]@cache:6379/0" in masked
    plain = "graphql Recent ok in 12 ms, error_codes UPSTREAM_AUTH, max_tokens 5"
    assert redact(plain) == plain


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("sent AUTHORIZATION: Basic dXNlcjpwdw==", "dXNlcjpwdw=="),
        ("header bearer tok-1 refused", "tok-1"),
        ("X-Api-Key: xk_2", "xk_2"),
        ("apikey=ak-3", "ak-3"),
        ("API-KEY: ak-4", "ak-4"),
        ("Passwd=pw-5", "pw-5"),
        ("client_secret: cs-6", "cs-6"),
        ("amqp://guest:pw-7@host/", "pw-7"),
    ],
)
def test_each_kind_of_secret_is_masked_on_its_own(text: str, secret: str) -> None:
    """The cheap pre-check must never let a line through that a pattern would mask."""
    assert secret not in redact(text)


def test_formatters_redact_messages_and_tracebacks() -> None:
    try:
        raise ValueError("connect failed: redis://:hunter2@cache:6379")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "with %s", ("Bearer abc123",), exc_info=True
        )
        import sys

        record.exc_info = sys.exc_info()
    record.fields = {"request_id": "r-9"}  # type: ignore[attr-defined]
    line = orjson.loads(JsonFormatter().format(record))
    assert line["request_id"] == "r-9" and line["level"] == "error"
    assert "abc123" not in line["message"] and "hunter2" not in line["detail"]
    text = TextFormatter().format(record)
    assert '"request_id":"r-9"' in text and "hunter2" not in text and "abc123" not in text


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    others = {n: logging.getLogger(n) for n in (*QUIET_LOGGERS, "uvicorn", "uvicorn.access")}
    saved_others = {
        n: (lg.level, lg.handlers[:], lg.propagate, lg.disabled) for n, lg in others.items()
    }
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, (level, handlers, propagate, disabled) in saved_others.items():
        logger = others[name]
        logger.level, logger.handlers[:], logger.propagate, logger.disabled = (
            level,
            handlers,
            propagate,
            disabled,
        )


def test_setup_logging_reads_level_and_format_from_the_environment(
    monkeypatch, restore_logging
) -> None:
    monkeypatch.setenv("TASK_GATEWAY_LOG_LEVEL", "warning")
    monkeypatch.setenv("TASK_GATEWAY_LOG_FORMAT", "json")
    setup_logging()
    root = logging.getLogger()
    [handler] = root.handlers
    assert isinstance(handler.formatter, JsonFormatter) and root.level == logging.WARNING
    assert logging.getLogger("httpx").level >= logging.WARNING
    assert logging.getLogger("uvicorn.access").disabled
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    logging.getLogger("gateway.test").warning("hello", extra={"fields": {"n": 1}})
    assert orjson.loads(stream.getvalue())["n"] == 1
    monkeypatch.setenv("TASK_GATEWAY_LOG_FORMAT", "text")
    setup_logging(level="debug")
    assert isinstance(logging.getLogger().handlers[0].formatter, TextFormatter)
    assert logging.getLogger().level == logging.DEBUG


def test_lines_are_written_in_batches_but_never_held_back() -> None:
    """Info lines wait at most the flush interval, even when nothing else is logged; a
    warning is written at once, with everything before it; closing writes the rest."""
    stream = io.StringIO()
    handler = BufferedStreamHandler(stream, interval=0.05)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gateway.test.buffered")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("one")
        logger.info("two")
        assert stream.getvalue() == ""  # batched, not one write per line
        deadline = time.monotonic() + 5
        while not stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [orjson.loads(line)["message"] for line in stream.getvalue().splitlines()] == [
            "one",
            "two",
        ]
        handler.interval = 60  # from now on only a warning or closing can write
        logger.info("three")
        logger.warning("four")
        messages = [orjson.loads(line)["message"] for line in stream.getvalue().splitlines()]
        assert messages == ["one", "two", "three", "four"]
        logger.info("five")
        handler.close()
        assert orjson.loads(stream.getvalue().splitlines()[-1])["message"] == "five"
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_request_lines_go_straight_to_the_gateway_s_own_handler_in_the_same_shape(
    make_gateway: GatewayFactory, restore_logging
) -> None:
    """With ``setup_logging``'s handler as the only one, request lines skip the LogRecord
    but read exactly as the formatter writes them; any other handler still gets records."""
    setup_logging(level="info", json=True)
    [handler] = logging.getLogger().handlers
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    assert sole_json_handler(logging.getLogger("gateway.request")) is handler
    gateway = make_gateway()
    gateway.data(QUERY)
    gateway.data(QUERY)  # answered by the response cache
    handler.flush()
    direct = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    direct = [line for line in direct if line["logger"] == "gateway.request"]
    assert [line["response_cache"] for line in direct] == [False, True]

    records: list[logging.LogRecord] = []
    collector = logging.Handler()
    collector.emit = records.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(collector)
    assert sole_json_handler(logging.getLogger("gateway.request")) is None
    gateway.data(QUERY)
    handler.flush()
    [record] = [r for r in records if r.name == "gateway.request"]
    through_logging = orjson.loads(JsonFormatter().format(record))
    assert through_logging["response_cache"] is True
    assert list(through_logging) == list(direct[1])  # same keys, same order
    assert {
        k: v for k, v in through_logging.items() if k not in ("time", "request_id", "duration_ms")
    } == {k: v for k, v in direct[1].items() if k not in ("time", "request_id", "duration_ms")}
    assert orjson.loads(stream.getvalue().splitlines()[-1])["logger"] == "gateway.request"

    logging.getLogger().setLevel(logging.WARNING)
    lines_before = len(stream.getvalue().splitlines())
    gateway.data(QUERY)
    handler.flush()
    assert len(stream.getvalue().splitlines()) == lines_before  # below the level: nothing
