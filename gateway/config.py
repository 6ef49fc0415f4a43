"""Settings: a TOML file for the shape, the environment for secrets; checked once at start.

A mistake stops start-up with one line that names the setting, e.g.
``vendors.xpander.api_key: missing (set TASK_GATEWAY_XPANDER_API_KEY)`` or
``vendors.orq.timeuot: unknown setting``.

    [cache]
    url = "redis://127.0.0.1:6379/0"      # default: memory, this process only

    [vendors.xpander]
    base_url = "https://api.xpander.ai"
    agents = ["8c1a…", "f02e…"]           # a vendor that lists tasks per agent needs some
    # api_key from $TASK_GATEWAY_XPANDER_API_KEY (or api_key = "…" in a file kept secret)

Every setting is declared once, in the tables below (``SECTIONS``, ``VENDOR_KEYS``): its
type, its range, its default and the environment variable that overrides it. Types are
strict because a loose one can switch security off: ``open = "false"`` is a string, and a
truthy one; ``api_keys = "k"`` would make every character of ``k`` a key. No message ever
repeats a value given as text: a key typed under the wrong name must not reach a log.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from gateway.core.budget import DEFAULT_INTERACTIVE_RESERVE
from gateway.core.contract import Credentials
from gateway.core.memory import DEFAULT_MAX_BYTES as DEFAULT_CACHE_MAX_BYTES
from gateway.core.memory import DEFAULT_MAX_ENTRIES as DEFAULT_CACHE_MAX_ENTRIES
from gateway.core.records import TaskStatus, Vendor
from gateway.core.upstream import DEFAULT_FIRST_PAGE_TTL_SECONDS
from gateway.graph.cost import DEFAULT_MAX_COST, DEFAULT_MAX_LIST_ITEMS
from gateway.graph.document import DEFAULT_MAX_DOCUMENT_BYTES
from gateway.graph.schema import QueryLimits
from gateway.index.sync import DEFAULT_INTERVAL_SECONDS as DEFAULT_SYNC_INTERVAL_SECONDS
from gateway.index.sync import DEFAULT_RESCAN_SECONDS
from gateway.vendors.registry import CONNECTORS, connector_for
from gateway.web.auth import DEFAULT_FAILED_PER_MINUTE as DEFAULT_FAILED_AUTH_PER_MINUTE
from gateway.web.limits import DEFAULT_BURST, DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE_PER_SECOND
from gateway.web.persisted import DEFAULT_MAX_ENTRIES as DEFAULT_APQ_MAX_ENTRIES
from gateway.web.persisted import load_manifest

ENV_PREFIX = "TASK_GATEWAY_"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_CACHE_TTL_SECONDS = 30.0
DEFAULT_STALE_IF_ERROR_SECONDS = 300.0
DEFAULT_MAX_FIRST = 100
DEFAULT_REQUEST_DEADLINE_SECONDS = 15.0
DEFAULT_ANSWER_WITHIN_SECONDS = 3.0
"""A GraphQL answer goes out with the vendors that answered by then (docs/operating.md says
why 3 s: far above a healthy vendor's page, far below the 10 s timeout a hung one costs)."""
DEFAULT_POLL_INTERVAL_SECONDS = 5.0
DEFAULT_MAX_UPSTREAM_CALLS = 10_000
"""Page reads per request. The heaviest legitimate requests measured over 50,000 tasks per
vendor read 4,018 pages (``taskStats``, a whole export) and 2,358 (a page with
``totalCount``): 10,000 serves them up to about 125,000 tasks per vendor."""
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024

KIB, MIB, GIB = 1024, 1024 * 1024, 1024 * 1024 * 1024
DAY = 24 * 3600.0

Kind = Literal["bool", "int", "float", "text", "texts", "table"]


class ConfigError(Exception):
    """A setting is wrong; the message is one line that names it."""


@dataclass(frozen=True)
class Key:
    """One setting: its TOML type, its range (numbers), its default, and the environment
    variable (without ``TASK_GATEWAY_`` and, for a vendor, without ``<VENDOR>_``) that
    overrides the file."""

    kind: Kind
    default: Any = None
    low: float = 0
    high: float = math.inf
    env: str | None = None
    empty: bool = False
    """A text may be empty (``api_key_scheme = ""``: no scheme)."""


def _int(default: int, low: int, high: float) -> Key:
    return Key("int", default, low, high)


def _seconds(default: float | None, low: float, high: float) -> Key:
    return Key("float", default, low, high)


SECTIONS: dict[str, dict[str, Key]] = {
    "cache": {
        "url": Key("text", env="CACHE_URL"),
        "max_entries": _int(DEFAULT_CACHE_MAX_ENTRIES, 1, 10_000_000),
        "max_bytes": _int(DEFAULT_CACHE_MAX_BYTES, KIB, 1024 * GIB),
        "stale_if_error": _seconds(DEFAULT_STALE_IF_ERROR_SECONDS, 0, 7 * DAY),
    },
    "graphql": {
        "max_first": _int(DEFAULT_MAX_FIRST, 1, 10_000),
        "graphiql": Key("bool", True),
        "introspection": Key("bool", QueryLimits.introspection),
        "max_depth": _int(QueryLimits.max_depth, 1, 100),
        "max_aliases": _int(QueryLimits.max_aliases, 0, 1_000),
        "max_tokens": _int(QueryLimits.max_tokens, 1, 100_000),
        "max_cost": _int(DEFAULT_MAX_COST, 1, 10_000_000),
        "max_document_bytes": _int(DEFAULT_MAX_DOCUMENT_BYTES, 64, 16 * MIB),
        "max_list_items": _int(DEFAULT_MAX_LIST_ITEMS, 1, 10_000),
        "max_upstream_calls": _int(DEFAULT_MAX_UPSTREAM_CALLS, 1, 100_000),
        "apq_max_entries": _int(DEFAULT_APQ_MAX_ENTRIES, 1, 1_000_000),
        "request_deadline": _seconds(DEFAULT_REQUEST_DEADLINE_SECONDS, 0.1, 600),
        "answer_within": _seconds(DEFAULT_ANSWER_WITHIN_SECONDS, 0, 600),
        "poll_interval": _seconds(DEFAULT_POLL_INTERVAL_SECONDS, 0.1, 3600),
        "response_cache": Key("bool", True),
        "persisted_queries": Key("text"),
        "metric_operations": Key("texts", ()),
    },
    "auth": {
        "api_keys": Key("texts", (), env="API_KEYS"),
        "open": Key("bool", False),
        "forward_vendor_credentials": Key("bool", False),
        "failed_attempts_per_minute": _int(DEFAULT_FAILED_AUTH_PER_MINUTE, 0, 100_000),
    },
    "limits": {
        "max_body_bytes": _int(DEFAULT_MAX_BODY_BYTES, KIB, GIB),
        "rate_per_second": _seconds(DEFAULT_RATE_PER_SECOND, 0, 1_000_000),
        "rate_burst": _int(DEFAULT_BURST, 1, 1_000_000),
    },
    "cors": {"origins": Key("texts", ())},
    "budgets": {"interactive_reserve": Key("float", DEFAULT_INTERACTIVE_RESERVE, 0, 1)},
    "tracing": {"enabled": Key("bool", False, env="TRACING")},
    "index": {
        "url": Key("text", env="INDEX_URL"),
        "interval": _seconds(DEFAULT_SYNC_INTERVAL_SECONDS, 1, DAY),
        "rescan_interval": _seconds(DEFAULT_RESCAN_SECONDS, 60, 30 * DAY),
    },
}
"""Every section and setting of the file except ``[vendors.<name>]`` (``VENDOR_KEYS``)."""

VENDOR_KEYS: dict[str, Key] = {
    "enabled": Key("bool", env="ENABLED"),
    "base_url": Key("text", env="BASE_URL"),
    "api_key": Key("text", env="API_KEY"),
    "api_key_header": Key("text"),
    "api_key_scheme": Key("text", empty=True),
    "agents": Key("texts", (), env="AGENTS"),
    "timeout": _seconds(DEFAULT_TIMEOUT_SECONDS, 0.1, 300),
    "cache_ttl": _seconds(DEFAULT_CACHE_TTL_SECONDS, 0, DAY),
    "first_page_ttl": _seconds(None, 0, DAY),
    "status_map": Key("table", {}),
    "max_response_bytes": _int(DEFAULT_MAX_RESPONSE_BYTES, KIB, 4 * GIB),
    "max_requests_per_minute": Key("int", None, 1, 1_000_000, env="MAX_REQUESTS_PER_MINUTE"),
    "max_concurrency": Key("int", None, 1, 10_000),
}
"""The settings of each ``[vendors.<name>]`` table."""

ENV_TRUE, ENV_FALSE = ("true", "1"), ("false", "0")
ENV_INT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class VendorConfig:
    vendor: Vendor
    enabled: bool
    base_url: str
    credentials: Credentials | None
    agents: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    cache_ttl: float = DEFAULT_CACHE_TTL_SECONDS
    first_page_ttl: float = DEFAULT_FIRST_PAGE_TTL_SECONDS
    status_map: Mapping[str, TaskStatus] = field(default_factory=dict)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """An upstream response body larger than this is refused as UPSTREAM_BAD_RESPONSE."""
    max_requests_per_minute: int | None = None
    """Calls to the vendor in any rolling minute, all replicas together (None: no limit of
    ours; a limit the vendor states in ``X-RateLimit-Limit`` still applies)."""
    max_concurrency: int | None = None
    """Calls to the vendor in flight at once, per replica (None: the pool's bound)."""


@dataclass(frozen=True)
class Settings:
    vendors: Mapping[Vendor, VendorConfig]
    cache_url: str | None = None
    cache_max_entries: int = DEFAULT_CACHE_MAX_ENTRIES
    stale_if_error: float = DEFAULT_STALE_IF_ERROR_SECONDS
    forward_vendor_credentials: bool = False
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    open_access: bool = False
    """No client key needed: the demo's default, never ``serve``'s unless configured."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rate_per_second: float = DEFAULT_RATE_PER_SECOND
    rate_burst: int = DEFAULT_BURST
    max_first: int = DEFAULT_MAX_FIRST
    graphiql: bool = True
    example_query: str | None = None
    limits: QueryLimits = field(default_factory=QueryLimits)
    request_deadline: float = DEFAULT_REQUEST_DEADLINE_SECONDS
    interactive_reserve: float = DEFAULT_INTERACTIVE_RESERVE
    """Share of each vendor's budget only interactive requests may use (``core/budget.py``)."""
    answer_within: float = DEFAULT_ANSWER_WITHIN_SECONDS
    """Seconds after which a GraphQL answer goes out without the vendors still out (0: off)."""
    cors_origins: tuple[str, ...] = ()
    tracing: bool = False
    response_cache: bool = True
    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS
    """Seconds between the shared polls behind ``taskChanged`` subscriptions."""
    persisted_queries: str | None = None
    """An allow-list manifest: when set, only its documents run (APQ is always on)."""
    max_upstream_calls: int = DEFAULT_MAX_UPSTREAM_CALLS
    """Upstream calls one request may start, all vendors together."""
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES
    """The memory cache's bound in bytes (entries are also bounded by count)."""
    apq_max_entries: int = DEFAULT_APQ_MAX_ENTRIES
    """Automatic persisted queries kept (each at most ``limits.max_document_bytes``)."""
    failed_auth_per_minute: int = DEFAULT_FAILED_AUTH_PER_MINUTE
    """Failed authentication attempts per client address per minute before 429."""
    index_url: str | None = field(default=None, repr=False)
    """The task index (``sqlite:///path`` or ``postgresql://…``); None: no index, every
    read is live. Not in ``repr``: the URL may hold a password."""
    index_interval: float = DEFAULT_SYNC_INTERVAL_SECONDS
    """Seconds between two incremental sync passes of a vendor."""
    index_rescan_interval: float = DEFAULT_RESCAN_SECONDS
    """Seconds between two full reads of a vendor (they also find deleted tasks)."""
    metric_operations: tuple[str, ...] = ()
    """Operation names counted under their own label in ``/metrics`` (open to anyone): a
    name the operator chose, never one a caller sends; the rest count as ``_other``."""

    @property
    def enabled(self) -> list[VendorConfig]:
        return [v for v in self.vendors.values() if v.enabled]


def load_settings(path: str | Path | None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from a TOML file (optional) and the environment."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    path = path or env.get(f"{ENV_PREFIX}CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config: file {str(path)!r} not found") from None
        except OSError as exc:
            raise ConfigError(f"config: cannot read {str(path)!r} ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config: {path} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {path} is not valid TOML ({exc})") from None
    return parse_settings(data, env)


def parse_settings(data: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Settings from parsed TOML and the environment; a mistake raises ``ConfigError``."""
    unknown = unknown_settings(data)
    if unknown:
        raise ConfigError("; ".join(unknown))
    read = {
        name: _section(data.get(name, {}), keys, name, env, ENV_PREFIX)
        for name, keys in SECTIONS.items()
    }
    cache, graphql, auth, limits = read["cache"], read["graphql"], read["auth"], read["limits"]
    raw_vendors = _table(data.get("vendors", {}), "vendors")
    vendors = {
        v: _vendor(v, _table(raw_vendors.get(v.value, {}), f"vendors.{v.value}"), env)
        for v in Vendor
    }
    if not auth["api_keys"] and not auth["open"]:
        raise ConfigError(
            f"auth.api_keys: no client key configured (set {ENV_PREFIX}API_KEYS, or "
            "auth.open = true to serve without authentication)"
        )
    cache_url = cache["url"]
    index = read["index"]
    if index["url"] is not None and urlsplit(index["url"]).scheme.split("+")[0] not in (
        "sqlite",
        "postgresql",
        "postgres",
    ):
        raise ConfigError("index.url: must start with sqlite:/// or postgresql://")
    if cache_url is not None and urlsplit(cache_url).scheme not in ("memory", "redis", "rediss"):
        raise ConfigError("cache.url: must start with memory://, redis:// or rediss://")
    return Settings(
        vendors=vendors,
        cache_url=cache_url,
        cache_max_entries=cache["max_entries"],
        stale_if_error=cache["stale_if_error"],
        forward_vendor_credentials=auth["forward_vendor_credentials"],
        api_keys=auth["api_keys"],
        open_access=auth["open"],
        max_body_bytes=limits["max_body_bytes"],
        rate_per_second=limits["rate_per_second"],
        rate_burst=limits["rate_burst"],
        max_first=graphql["max_first"],
        graphiql=graphql["graphiql"],
        limits=QueryLimits(
            max_depth=graphql["max_depth"],
            max_aliases=graphql["max_aliases"],
            max_tokens=graphql["max_tokens"],
            max_cost=graphql["max_cost"],
            max_document_bytes=graphql["max_document_bytes"],
            max_list_items=graphql["max_list_items"],
            introspection=graphql["introspection"],
        ),
        request_deadline=graphql["request_deadline"],
        interactive_reserve=read["budgets"]["interactive_reserve"],
        answer_within=graphql["answer_within"],
        poll_interval=graphql["poll_interval"],
        response_cache=graphql["response_cache"],
        tracing=read["tracing"]["enabled"] or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")),
        cors_origins=read["cors"]["origins"],
        persisted_queries=_manifest(graphql["persisted_queries"]),
        max_upstream_calls=graphql["max_upstream_calls"],
        cache_max_bytes=cache["max_bytes"],
        apq_max_entries=graphql["apq_max_entries"],
        failed_auth_per_minute=auth["failed_attempts_per_minute"],
        metric_operations=graphql["metric_operations"],
        index_url=index["url"],
        index_interval=index["interval"],
        index_rescan_interval=index["rescan_interval"],
    )


def unknown_settings(data: Mapping[str, Any]) -> list[str]:
    """Every name in the file that no table above declares, each as ``name: unknown …``."""
    found = []
    for name, value in data.items():
        if name == "vendors" and isinstance(value, Mapping):
            for vendor, table in value.items():
                where = f"vendors.{vendor}"
                if vendor not in {v.value for v in Vendor}:
                    known = ", ".join(sorted(v.value for v in Vendor))
                    found.append(f"{where}: unknown vendor (known: {known})")
                elif isinstance(table, Mapping):
                    found += _unknown_keys(table, VENDOR_KEYS, where)
        elif name in SECTIONS:
            if isinstance(value, Mapping):
                found += _unknown_keys(value, SECTIONS[name], name)
        elif name != "vendors":
            found.append(
                f"{name}: unknown {'section' if isinstance(value, Mapping) else 'setting'}"
            )
    return found


def _unknown_keys(table: Mapping[str, Any], keys: Mapping[str, Key], where: str) -> list[str]:
    return [f"{where}.{name}: unknown setting" for name in table if name not in keys]


def _section(
    raw: Any, keys: Mapping[str, Key], where: str, env: Mapping[str, str], prefix: str
) -> dict[str, Any]:
    """The values of one table: the environment's, else the file's, else the default."""
    table = _table(raw, where)
    values: dict[str, Any] = {}
    for name, key in keys.items():
        variable = f"{prefix}{key.env}" if key.env else None
        if variable and env.get(variable):  # set but empty counts as unset
            values[name] = _from_env(env[variable], key, variable)
        elif name in table:
            values[name] = _checked(table[name], key, f"{where}.{name}")
        else:
            values[name] = key.default
    return values


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: must be a table ([{where}]), not {_what(value)}")
    return value


def _checked(value: Any, key: Key, name: str) -> Any:
    """``value`` if it has the type and range ``key`` declares (a list becomes a tuple)."""
    if key.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: must be true or false (a TOML boolean), not {_what(value)}")
        return value
    if key.kind in ("int", "float"):
        whole = isinstance(value, int) and not isinstance(value, bool)
        if not (whole or (key.kind == "float" and isinstance(value, float))):
            wanted = "an integer" if key.kind == "int" else "a number"
            raise ConfigError(f"{name}: must be {wanted}, not {_what(value)}")
        if (isinstance(value, float) and not math.isfinite(value)) or not (
            key.low <= value <= key.high
        ):
            raise ConfigError(f"{name}: must be from {key.low:g} to {key.high:g}, not {value:g}")
        return value if key.kind == "int" else float(value)
    if key.kind == "text":
        if not isinstance(value, str) or not (value.strip() or key.empty):
            raise ConfigError(f"{name}: must be a non-empty string, not {_what(value)}")
        return value
    if key.kind == "texts":
        if not isinstance(value, list):
            raise ConfigError(
                f'{name}: must be an array of non-empty strings (e.g. ["a"]), not {_what(value)}'
            )
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(f"{name}[{i}]: must be a non-empty string, not {_what(item)}")
        return tuple(item.strip() for item in value)
    table = _table(value, name)
    for entry, text in table.items():
        _checked(text, Key("text"), f"{name}.{entry}")
    return dict(table)


def _from_env(text: str, key: Key, variable: str) -> Any:
    """An environment variable's text as ``key``'s type: booleans only true/false/1/0,
    lists comma-separated."""
    if key.kind == "bool":
        lowered = text.strip().lower()
        if lowered not in ENV_TRUE + ENV_FALSE:
            raise ConfigError(f"{variable}: must be true, false, 1 or 0")
        return lowered in ENV_TRUE
    if key.kind == "texts":
        items = [item.strip() for item in text.split(",")]
        if not all(items):
            raise ConfigError(f"{variable}: a comma-separated list without empty items")
        return tuple(items)
    if key.kind == "int" and ENV_INT.fullmatch(text.strip()):
        return _checked(int(text), key, variable)
    if key.kind == "float":
        try:
            return _checked(float(text), key, variable)
        except ValueError:
            pass
    if key.kind in ("int", "float"):
        raise ConfigError(f"{variable}: must be a number")
    return text


def _what(value: Any) -> str:
    """The TOML type of ``value``, for a message that must not repeat the value itself."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string" if value.strip() else "an empty string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date or time"
    return type(value).__name__


def _vendor(vendor: Vendor, raw: Mapping[str, Any], env: Mapping[str, str]) -> VendorConfig:
    where = f"vendors.{vendor.value}"
    prefix = f"{ENV_PREFIX}{vendor.name}_"
    values = _section(raw, VENDOR_KEYS, where, env, prefix)
    base_url: str = values["base_url"] or ""
    enabled = bool(base_url) if values["enabled"] is None else values["enabled"]
    connector = connector_for(vendor)  # what the vendor declares about itself
    header = values["api_key_header"] or connector.CREDENTIAL_HEADER
    scheme = values["api_key_scheme"]
    scheme = connector.CREDENTIAL_SCHEME if scheme is None else scheme or None
    secret = values["api_key"]
    credentials = Credentials(secret, header, scheme) if secret else None
    status_map: dict[str, TaskStatus] = {}
    for value, shared in values["status_map"].items():
        try:
            status_map[value.lower()] = TaskStatus[shared.upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in TaskStatus)
            raise ConfigError(f"{where}.status_map.{value}: must be one of {names}") from None
    if status_map and not connector.EXTENSIBLE_STATUSES:
        raise ConfigError(
            f"{where}.status_map: only {_extensible()}'s free-form statuses can be extended"
        )
    if enabled:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts):
            raise ConfigError(f"{where}.base_url: must be an http(s) URL (set {prefix}BASE_URL)")
        if parts.username or parts.password:
            raise ConfigError(f"{where}.base_url: put credentials in api_key, not in the URL")
        if connector.KEY_REQUIRED and credentials is None:
            raise ConfigError(f"{where}.api_key: missing (set {prefix}API_KEY)")
        if connector.PER_AGENT and not values["agents"]:
            raise ConfigError(
                f"{where}.agents: {vendor.value} lists tasks per agent; name at least one"
            )
    cache_ttl = values["cache_ttl"]
    first_page_ttl = values["first_page_ttl"]
    return VendorConfig(
        vendor=vendor,
        enabled=enabled,
        base_url=base_url.rstrip("/"),
        credentials=credentials,
        agents=values["agents"],
        timeout=values["timeout"],
        cache_ttl=cache_ttl,
        first_page_ttl=(
            min(DEFAULT_FIRST_PAGE_TTL_SECONDS, cache_ttl)
            if first_page_ttl is None
            else first_page_ttl
        ),
        status_map=status_map,
        max_response_bytes=values["max_response_bytes"],
        max_requests_per_minute=values["max_requests_per_minute"],
        max_concurrency=values["max_concurrency"],
    )


def _extensible() -> str:
    """The vendors whose statuses configuration may extend, by name (``A and B``)."""
    return " and ".join(c.LABEL for c in CONNECTORS.values() if c.EXTENSIBLE_STATUSES)


def _port_ok(parts: SplitResult) -> bool:
    try:
        return parts.port is None or parts.port > 0
    except ValueError:  # not a number, or out of range
        return False


def _manifest(path: str | None) -> str | None:
    """The path of a persisted-query manifest that loads, read once here so a bad one
    stops start-up with one line rather than a worker with a traceback."""
    if path is None:
        return None
    where = "graphql.persisted_queries"
    try:
        documents = load_manifest(path)
    except FileNotFoundError:
        raise ConfigError(f"{where}: file {path!r} not found") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path!r} ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError, RecursionError):
        documents = {}
    if not documents or not all(
        isinstance(k, str) and k and isinstance(v, str) and v.strip() for k, v in documents.items()
    ):
        raise ConfigError(
            f'{where}: {path!r} is not a manifest ({{"operations": [{{"id": sha256, '
            '"body": query}, …]} or {sha256: query, …}, at least one)'
        )
    return path
