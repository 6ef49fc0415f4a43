"""Structured logs: JSON lines when stderr is not a terminal, readable lines when it is.

Fields passed as ``extra={"fields": {...}}`` become top-level JSON keys. Nothing here ever
receives a secret: callers log codes, names and digests, never keys or upstream URLs.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["error"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            line["detail"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def setup_logging(level: str = "INFO", json: bool | None = None) -> None:
    """JSON unless stderr is a terminal (override with ``json``)."""
    use_json = not sys.stderr.isatty() if json is None else json
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if use_json else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").disabled = True  # our request line replaces it
