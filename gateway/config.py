"""Settings: a TOML file for the shape, the environment for secrets; checked once at start.

A mistake stops start-up with one line that names the setting, e.g.
``vendors.xpander.api_key: missing (set TASK_GATEWAY_XPANDER_API_KEY)``.

    [cache]
    url = "redis://127.0.0.1:6379/0"      # default: memory, this process only

    [vendors.xpander]
    base_url = "https://api.xpander.ai"
    agents = ["8c1a…", "f02e…"]           # xpander and orq list tasks per agent
    # api_key from $TASK_GATEWAY_XPANDER_API_KEY (or api_key = "…" in a file kept secret)
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.core.records import TaskStatus, Vendor
from gateway.graph.schema import QueryLimits
from gateway.vendors.base import Credentials
from gateway.web.limits import DEFAULT_BURST, DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE_PER_SECOND

ENV_PREFIX = "TASK_GATEWAY_"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_CACHE_TTL_SECONDS = 30.0
DEFAULT_FIRST_PAGE_TTL_SECONDS = 10.0
DEFAULT_CACHE_MAX_ENTRIES = 20_000
DEFAULT_STALE_IF_ERROR_SECONDS = 300.0
DEFAULT_MAX_FIRST = 100
DEFAULT_REQUEST_DEADLINE_SECONDS = 15.0
DEFAULT_POLL_INTERVAL_SECONDS = 5.0

# How each vendor expects its key; Agentex has no auth in its spec, deployments add one.
CREDENTIAL_STYLE: dict[Vendor, tuple[str, str | None]] = {
    Vendor.AGENTEX: ("Authorization", "Bearer"),
    Vendor.XPANDER: ("x-api-key", None),
    Vendor.ORQ: ("Authorization", "Bearer"),
    Vendor.SUBNOTO: ("Authorization", "Bearer"),
}
KEY_REQUIRED = {Vendor.XPANDER, Vendor.ORQ, Vendor.SUBNOTO}
PER_AGENT = {Vendor.XPANDER, Vendor.ORQ}


class ConfigError(Exception):
    """A setting is wrong; the message is one line that names it."""


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


@dataclass(frozen=True)
class Settings:
    vendors: Mapping[Vendor, VendorConfig]
    cache_url: str | None = None
    cache_max_entries: int = DEFAULT_CACHE_MAX_ENTRIES
    stale_if_error: float = DEFAULT_STALE_IF_ERROR_SECONDS
    forward_vendor_credentials: bool = False
    api_keys: tuple[str, ...] = ()
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
    cors_origins: tuple[str, ...] = ()
    tracing: bool = False
    response_cache: bool = True
    poll_interval: float = DEFAULT_POLL_INTERVAL_SECONDS
    """Seconds between the shared polls behind ``taskChanged`` subscriptions."""
    persisted_queries: str | None = None
    """An allow-list manifest: when set, only its documents run (APQ is always on)."""

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
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config: file {str(path)!r} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config: {path} is not valid TOML ({exc})") from None
    return parse_settings(data, env)


def parse_settings(data: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    unknown = set(data) - {"cache", "vendors", "graphql", "auth", "limits", "cors", "tracing"}
    if unknown:
        raise ConfigError(f"{sorted(unknown)[0]}: unknown section")
    raw_vendors = _table(data, "vendors")
    names = {v.value for v in Vendor}
    for name in raw_vendors:
        if name not in names:
            raise ConfigError(f"vendors.{name}: unknown vendor (known: {', '.join(sorted(names))})")
    vendors = {v: _vendor(v, _table(raw_vendors, v.value, "vendors."), env) for v in Vendor}
    cache = _table(data, "cache")
    graphql = _table(data, "graphql")
    auth = _table(data, "auth")
    limits = _table(data, "limits")
    keys_env = env.get(f"{ENV_PREFIX}API_KEYS")
    api_keys = tuple(
        k.strip()
        for k in (keys_env.split(",") if keys_env else auth.get("api_keys", ()))
        if str(k).strip()
    )
    open_access = bool(auth.get("open", False))
    if not api_keys and not open_access:
        raise ConfigError(
            f"auth.api_keys: no client key configured (set {ENV_PREFIX}API_KEYS, or "
            "auth.open = true to serve without authentication)"
        )
    cache_url = env.get(f"{ENV_PREFIX}CACHE_URL") or cache.get("url")
    if cache_url is not None:
        scheme = urlsplit(str(cache_url)).scheme
        if scheme not in ("memory", "redis", "rediss"):
            raise ConfigError("cache.url: must start with memory://, redis:// or rediss://")
    return Settings(
        vendors=vendors,
        cache_url=cache_url,
        cache_max_entries=int(_number(cache, "max_entries", DEFAULT_CACHE_MAX_ENTRIES, "cache.")),
        stale_if_error=_number(cache, "stale_if_error", DEFAULT_STALE_IF_ERROR_SECONDS, "cache."),
        forward_vendor_credentials=bool(auth.get("forward_vendor_credentials", False)),
        api_keys=api_keys,
        open_access=open_access,
        max_body_bytes=int(_number(limits, "max_body_bytes", DEFAULT_MAX_BODY_BYTES, "limits.")),
        rate_per_second=_number(limits, "rate_per_second", DEFAULT_RATE_PER_SECOND, "limits."),
        rate_burst=int(_number(limits, "rate_burst", DEFAULT_BURST, "limits.")),
        max_first=int(_number(graphql, "max_first", DEFAULT_MAX_FIRST, "graphql.")),
        graphiql=bool(graphql.get("graphiql", True)),
        limits=QueryLimits(
            max_depth=int(_number(graphql, "max_depth", QueryLimits.max_depth, "graphql.")),
            max_aliases=int(_number(graphql, "max_aliases", QueryLimits.max_aliases, "graphql.")),
            max_tokens=int(_number(graphql, "max_tokens", QueryLimits.max_tokens, "graphql.")),
            max_cost=int(_number(graphql, "max_cost", QueryLimits.max_cost, "graphql.")),
            introspection=bool(graphql.get("introspection", True)),
        ),
        request_deadline=_number(
            graphql, "request_deadline", DEFAULT_REQUEST_DEADLINE_SECONDS, "graphql."
        ),
        poll_interval=_number(graphql, "poll_interval", DEFAULT_POLL_INTERVAL_SECONDS, "graphql."),
        response_cache=bool(graphql.get("response_cache", True)),
        tracing=bool(_table(data, "tracing").get("enabled", False))
        or env.get(f"{ENV_PREFIX}TRACING", "").lower() in ("1", "true", "yes")
        or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")),
        cors_origins=tuple(str(o) for o in _list(data.get("cors", {}), "origins", "cors.")),
        persisted_queries=_manifest(graphql.get("persisted_queries")),
    )


def _vendor(vendor: Vendor, raw: Mapping[str, Any], env: Mapping[str, str]) -> VendorConfig:
    where = f"vendors.{vendor.value}"
    prefix = f"{ENV_PREFIX}{vendor.name}_"
    base_url = str(env.get(f"{prefix}BASE_URL") or raw.get("base_url") or "")
    enabled_raw = env.get(f"{prefix}ENABLED", raw.get("enabled", bool(base_url)))
    enabled = str(enabled_raw).lower() in ("1", "true", "yes", "on")
    secret = env.get(f"{prefix}API_KEY") or raw.get("api_key")
    header, scheme = CREDENTIAL_STYLE[vendor]
    header = str(raw.get("api_key_header", header))
    scheme = raw.get("api_key_scheme", scheme) or None
    credentials = Credentials(str(secret), header, scheme) if secret else None
    agents_raw = env.get(f"{prefix}AGENTS")
    agents = (
        tuple(a.strip() for a in agents_raw.split(",") if a.strip())
        if agents_raw
        else tuple(str(a) for a in raw.get("agents", ()))
    )
    status_map: dict[str, TaskStatus] = {}
    for value, shared in _table(raw, "status_map", where + ".").items():
        try:
            status_map[str(value).lower()] = TaskStatus[str(shared).upper()]
        except KeyError:
            raise ConfigError(
                f"{where}.status_map.{value}: {shared!r} is not a TaskStatus"
            ) from None
    if status_map and vendor is not Vendor.AGENTEX:
        raise ConfigError(f"{where}.status_map: only Agentex's free-form statuses can be extended")
    if enabled:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{where}.base_url: {base_url!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise ConfigError(f"{where}.base_url: put credentials in api_key, not in the URL")
        if vendor in KEY_REQUIRED and credentials is None:
            raise ConfigError(f"{where}.api_key: missing (set {prefix}API_KEY)")
        if vendor in PER_AGENT and not agents:
            raise ConfigError(
                f"{where}.agents: {vendor.value} lists tasks per agent; name at least one"
            )
    return VendorConfig(
        vendor=vendor,
        enabled=enabled,
        base_url=base_url.rstrip("/"),
        credentials=credentials,
        agents=agents,
        timeout=_number(raw, "timeout", DEFAULT_TIMEOUT_SECONDS, where + "."),
        cache_ttl=_number(raw, "cache_ttl", DEFAULT_CACHE_TTL_SECONDS, where + "."),
        first_page_ttl=_number(
            raw,
            "first_page_ttl",
            min(
                DEFAULT_FIRST_PAGE_TTL_SECONDS,
                _number(raw, "cache_ttl", DEFAULT_CACHE_TTL_SECONDS, where + "."),
            ),
            where + ".",
        ),
        status_map=status_map,
    )


def _list(data: Mapping[str, Any], name: str, where: str) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise ConfigError(f"{where}{name}: must be a list")
    return value


def _manifest(path: Any) -> str | None:
    if path is None:
        return None
    if not Path(str(path)).is_file():
        raise ConfigError(f"graphql.persisted_queries: file {str(path)!r} not found")
    return str(path)


def _table(data: Mapping[str, Any], name: str, where: str = "") -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}{name}: must be a table")
    return value


def _number(data: Mapping[str, Any], name: str, default: float, where: str) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}{name}: must be a number >= 0, got {value!r}")
    return float(value)
