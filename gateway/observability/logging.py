"""Structured logs: JSON lines when stderr is not a terminal, readable lines when it is.

Fields passed as ``extra={"fields": {...}}`` become top-level JSON keys. Callers log codes,
names and digests, never keys or upstream URLs; as a second line of defence every line is
passed through ``redact`` (bearer tokens, ``api_key=…``-style pairs, passwords in URLs), since
a library's exception message may quote a header or a connection URL.

    TASK_GATEWAY_LOG_LEVEL=debug      # default info
    TASK_GATEWAY_LOG_FORMAT=json      # json or text; default: json unless stderr is a terminal
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from typing import Any

import orjson

LEVEL_ENV = "TASK_GATEWAY_LOG_LEVEL"
FORMAT_ENV = "TASK_GATEWAY_LOG_FORMAT"
DEFAULT_LEVEL = "INFO"
REDACTED = "[redacted]"
QUIET_LOGGERS = ("httpx", "httpcore", "hpack")
"""Libraries that log every upstream request (with its full URL) at INFO or DEBUG: the
gateway's own request line and metrics already say what was called."""

_SECRETS = (
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+"), rf"\1\2{REDACTED}"),
    (
        re.compile(
            r"(?i)(?<![a-z0-9])(authorization|x-api-key|api[_-]?key|password|passwd|secret)"
            r"""(["']?\s*[:=]\s*b?["']?)(?!\[redacted\])[^\s"',;}\]]+"""
        ),
        rf"\1\2{REDACTED}",
    ),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@]*:[^/\s@]*@"), rf"\1{REDACTED}@"),
)


_MARKERS = (
    "bearer",
    "basic",
    "authorization",
    "api-key",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "secret",
    "://",
)
"""Every pattern above needs one of these: most lines have none, and a substring test is
far cheaper than the patterns (the request line is written once per request)."""


def redact(text: str) -> str:
    lowered = text.lower()
    for marker in _MARKERS:
        if marker in lowered:
            break
    else:
        return text
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    _seconds: tuple[int, str] = (-1, "")

    def _second(self, second: int) -> str:
        """The UTC timestamp to the second, formatted once a second, not once a line."""
        if self._seconds[0] != second:
            formatted = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._seconds = (second, formatted)
        return self._seconds[1]

    def line(
        self,
        created: float,
        level: str,
        name: str,
        message: str,
        fields: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> str:
        second = int(created)
        line: dict[str, Any] = {
            "time": f"{self._second(second)}.{int((created - second) * 1000):03d}Z",
            "level": level,
            "logger": name,
            "message": message,
        }
        line.update(fields)
        if extra:
            line.update(extra)
        return redact(orjson.dumps(line, default=str).decode())

    def format(self, record: logging.LogRecord) -> str:
        error = None
        if record.exc_info:
            error = {
                "error": record.exc_info[0].__name__ if record.exc_info[0] else None,
                "detail": self.formatException(record.exc_info),
            }
        return self.line(
            record.created,
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            getattr(record, "fields", {}),
            error,
        )


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + orjson.dumps(fields, default=str).decode()
        return redact(text)


FLUSH_INTERVAL_SECONDS = 0.2
MAX_BUFFERED_CHARS = 64 * 1024


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines in batches, at most ``interval`` seconds after they were logged.

    One write per line is a system call per request, and that was a third of the cost of a
    response-cache hit. A warning or worse, or a full buffer, is written at once; a timer
    thread writes what an idle gateway still holds; ``logging.shutdown`` (at exit) writes
    the rest. A process killed outright loses at most ``interval`` seconds of lines.
    """

    def __init__(self, stream: Any = None, interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        super().__init__(stream)
        self.interval = interval
        self.lines: list[str] = []
        self.size = 0
        self.closed = False
        self._timer: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write(line, record.levelno)

    def write(self, line: str, level: int) -> None:
        """Buffer one formatted line (``write_past_logging`` hands lines in directly)."""
        if level < self.level:
            return
        with self.lock:  # type: ignore[union-attr]  # the timer thread may be flushing
            self.lines.append(line)
            self.size += len(line)
        if level >= logging.WARNING or self.size >= MAX_BUFFERED_CHARS:
            self.flush()
        elif self._timer is None:
            self._timer = threading.Thread(target=self._flush_often, name="log-flush", daemon=True)
            self._timer.start()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self.lines, self.size = self.lines, [], 0
            if lines:
                try:
                    self.stream.write("\n".join(lines) + "\n")
                except Exception:  # a closed or broken stream must not break a request
                    return
            super().flush()

    def close(self) -> None:
        self.closed = True
        self.flush()
        super().close()

    def _flush_often(self) -> None:
        while not self.closed:
            time.sleep(self.interval)
            if self.lines:
                self.flush()


def log_fields(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """``logger.log(level, message, extra={"fields": fields})``, the structured way."""
    if logger.isEnabledFor(level) and not write_past_logging(logger, level, message, fields):
        logger.log(level, message, extra={"fields": fields})


def write_past_logging(
    logger: logging.Logger, level: int, message: str, fields: dict[str, Any]
) -> bool:
    """A performance shortcut, kept for its figure: when the line would end up only in the
    gateway's own JSON handler anyway (the set-up of ``setup_logging``, with no other
    handler or filter on the way), format it and hand it to that handler directly, without
    a ``LogRecord`` or the handler chain; False (nothing written) for any other set-up (a
    test's capture, an embedding application's handlers), which gets the record.

    What it buys (the request line is written once per request): a response-cache hit
    took ~71 -> ~59 µs of server CPU under wrk (``python -m bench cache``, 2026-11-23), and
    in process 61 -> 79 µs median when switched off (x1.28; 12 interleaved rounds of 1,000
    hits, 2026-11-29, loaded machine). With this and ``metrics.RequestCollector`` both
    off, server CPU per hit under wrk went 156 -> 201 µs (bench/'s cache harness, six
    alternating rounds, same day).
    """
    handler = sole_json_handler(logger)
    if handler is None:
        return False
    formatter: JsonFormatter = handler.formatter  # type: ignore[assignment]
    name = logging.getLevelName(level).lower()
    handler.write(formatter.line(time.time(), name, logger.name, message, fields), level)
    return True


def sole_json_handler(logger: logging.Logger) -> BufferedStreamHandler | None:
    """The one handler a line of ``logger`` would reach, if it is ours and formats JSON."""
    found: BufferedStreamHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters and current is logger:
            return None
        for handler in current.handlers:
            if (
                found is not None
                or type(handler) is not BufferedStreamHandler
                or type(handler.formatter) is not JsonFormatter
                or handler.filters
            ):
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found


def setup_logging(level: str | None = None, json: bool | None = None) -> None:
    """Root logging to stderr; JSON unless stderr is a terminal. ``level`` and ``json``
    override ``$TASK_GATEWAY_LOG_LEVEL`` and ``$TASK_GATEWAY_LOG_FORMAT``."""
    level = (level or os.environ.get(LEVEL_ENV) or DEFAULT_LEVEL).upper()
    if json is None:
        wanted = os.environ.get(FORMAT_ENV, "").lower()
        json = wanted == "json" if wanted in ("json", "text") else not sys.stderr.isatty()
    # The logging docs' "Optimization" flags: no line names a thread or a process.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = BufferedStreamHandler()
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.getLogger("uvicorn.access").disabled = True  # our request line replaces it
    # uvicorn's own loggers (start-up, shutdown, errors) go through the root handler too.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
