"""Issue 14, item 5: a configuration typo can never switch authentication off.

Every setting has a strict type: a boolean is a TOML boolean (``open = "false"`` is refused,
not truthy), a list is an array of non-empty strings (``api_keys = "k"`` is refused, not a
list of characters), numbers are in range and whole where whole is meant; an unknown name
anywhere stops start-up with one line naming it; and no message repeats a secret.

The settings below are written from the README's "Configuration", not read from the code.
"""

from __future__ import annotations

import math
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import ConfigError, parse_settings
from gateway.core.records import Vendor

KEYS = {"auth": {"api_keys": ["client-key"]}}
AGENTEX = {"base_url": "https://agentex.example.com"}
ORQ = {"base_url": "https://api.orq.ai", "agents": ["a1"], "api_key": "orq-key"}

BOOLEANS = [
    ("auth", "open"),
    ("auth", "forward_vendor_credentials"),
    ("graphql", "graphiql"),
    ("graphql", "introspection"),
    ("graphql", "response_cache"),
    ("tracing", "enabled"),
]
INTEGERS = [  # (section, name, smallest allowed, largest allowed)
    ("cache", "max_entries", 1, 10_000_000),
    ("cache", "max_bytes", 1024, 1024**4),
    ("graphql", "max_first", 1, 10_000),
    ("graphql", "max_depth", 1, 100),
    ("graphql", "max_aliases", 0, 1_000),
    ("graphql", "max_tokens", 1, 100_000),
    ("graphql", "max_cost", 1, 10_000_000),
    ("graphql", "max_document_bytes", 64, 16 * 1024**2),
    ("graphql", "max_list_items", 1, 10_000),
    ("graphql", "max_upstream_calls", 1, 100_000),
    ("graphql", "apq_max_entries", 1, 1_000_000),
    ("auth", "failed_attempts_per_minute", 0, 100_000),  # 0: off
    ("limits", "max_body_bytes", 1024, 1024**3),
    ("limits", "rate_burst", 1, 1_000_000),
    ("vendors.orq", "max_response_bytes", 1024, 4 * 1024**3),
]
NUMBERS = [  # seconds and rates: a float is fine
    ("cache", "stale_if_error", 0, 7 * 86400),
    ("graphql", "request_deadline", 0.1, 600),
    ("graphql", "poll_interval", 0.1, 3600),
    ("limits", "rate_per_second", 0, 1_000_000),
]
VENDOR_NUMBERS = [
    ("timeout", 0.1, 300),
    ("cache_ttl", 0, 86400),
    ("first_page_ttl", 0, 86400),
]
LISTS = [("auth", "api_keys"), ("cors", "origins"), ("graphql", "metric_operations")]
SETTINGS_BY_SECTION = {
    "cache": ["url", "max_entries", "max_bytes", "stale_if_error"],
    "graphql": [
        "max_first",
        "graphiql",
        "introspection",
        "max_depth",
        "max_aliases",
        "max_tokens",
        "max_cost",
        "max_document_bytes",
        "max_list_items",
        "max_upstream_calls",
        "apq_max_entries",
        "request_deadline",
        "poll_interval",
        "response_cache",
        "persisted_queries",
        "metric_operations",
    ],
    "auth": ["api_keys", "open", "forward_vendor_credentials", "failed_attempts_per_minute"],
    "limits": ["max_body_bytes", "rate_per_second", "rate_burst"],
    "cors": ["origins"],
    "tracing": ["enabled"],
    "vendors.orq": [
        "enabled",
        "base_url",
        "api_key",
        "api_key_header",
        "api_key_scheme",
        "agents",
        "timeout",
        "cache_ttl",
        "first_page_ttl",
        "status_map",
        "max_response_bytes",
    ],
}
NOT_BOOLEANS = ["false", "true", "False", "no", "", 0, 1, 0.0, [], [False], {}]


def refused(data: dict, env: dict | None = None) -> str:
    """The one-line message ``data`` is refused with."""
    with pytest.raises(ConfigError) as error:
        parse_settings(data, env or {})
    message = str(error.value)
    assert "\n" not in message and message.strip() == message
    return message


def with_setting(section: str, name: str, value: object) -> dict:
    """KEYS plus ``[section] name = value`` (``vendors.<v>`` sections get a working vendor)."""
    data: dict = {"auth": dict(KEYS["auth"])}
    if section.startswith("vendors."):
        vendor = section.split(".")[1]
        base = ORQ if vendor == "orq" else AGENTEX
        data["vendors"] = {vendor: {**base, name: value}}
    else:
        data.setdefault(section, {})[name] = value
    return data


@pytest.mark.parametrize(("section", "name"), [*BOOLEANS, ("vendors.orq", "enabled")])
@pytest.mark.parametrize("value", NOT_BOOLEANS, ids=repr)
def test_a_boolean_setting_takes_only_a_toml_boolean(section, name, value) -> None:
    assert refused(with_setting(section, name, value)).startswith(f"{section}.{name}: ")


def test_open_false_as_a_string_keeps_authentication_on() -> None:
    """The report: ``open = "false"`` was truthy, so access was open."""
    assert refused({"auth": {"open": "false"}}).startswith("auth.open: must be true or false")
    assert refused({"auth": {"open": "false", "api_keys": ["k"]}}).startswith("auth.open:")
    assert parse_settings({"auth": {"open": False, "api_keys": ["k"]}}, {}).open_access is False
    assert parse_settings({"auth": {"open": True}}, {}).open_access is True


@pytest.mark.parametrize(
    "value", ["MySecretKey-42", "", [""], ["  "], ["k", 42], ["k", ["j"]], [True], {"k": "v"}]
)
@pytest.mark.parametrize(("section", "name"), [*LISTS, ("vendors.orq", "agents")])
def test_a_list_setting_takes_only_an_array_of_non_empty_strings(section, name, value) -> None:
    message = refused(with_setting(section, name, value))
    assert message.startswith(f"{section}.{name}")


def test_a_string_of_keys_is_not_a_list_of_one_character_keys() -> None:
    message = refused({"auth": {"api_keys": "MySecretKey-42"}})
    assert message.startswith("auth.api_keys: must be an array")
    assert refused({"vendors": {"orq": {**ORQ, "agents": "id"}}}).startswith(
        "vendors.orq.agents: must be an array"
    )
    parsed = parse_settings({"auth": {"api_keys": [" MySecretKey-42 "]}}, {})
    assert parsed.api_keys == ("MySecretKey-42",)


@pytest.mark.parametrize(("section", "name", "low", "high"), INTEGERS)
def test_whole_numbers_in_range(section, name, low, high) -> None:
    for bad in (low - 1, high + 1, -1, low + 0.5, float(low), "10", True, math.inf, [low]):
        message = refused(with_setting(section, name, bad))
        assert message.startswith(f"{section}.{name}: must be"), message
    for good in (low, high, (low + high) // 2):
        parsed = parse_settings(with_setting(section, name, good), {})
        assert good in _numbers_of(parsed)


@pytest.mark.parametrize(
    ("section", "name", "low", "high"),
    [*NUMBERS, *(("vendors.orq", n, lo, hi) for n, lo, hi in VENDOR_NUMBERS)],
)
def test_numbers_in_range_and_finite(section, name, low, high) -> None:
    for bad in (low - 1, high * 2 + 1, math.inf, -math.inf, math.nan, "1", False, []):
        message = refused(with_setting(section, name, bad))
        assert message.startswith(f"{section}.{name}: must be"), message
    for good in (low, high, (low + high) / 3):
        assert float(good) in _numbers_of(parse_settings(with_setting(section, name, good), {}))


def _numbers_of(parsed) -> set[float]:
    """Every number the settings hold, vendors and query limits included."""
    found: set[float] = set()
    for holder in (parsed, parsed.limits, *parsed.vendors.values()):
        for value in vars(holder).values():
            if isinstance(value, int | float) and not isinstance(value, bool):
                found.add(value)
    return found


def test_the_new_limits_are_read_from_their_sections() -> None:
    parsed = parse_settings(
        {
            "auth": {"api_keys": ["k"], "failed_attempts_per_minute": 7},
            "cache": {"max_bytes": 2048},
            "graphql": {
                "max_document_bytes": 4096,
                "max_list_items": 12,
                "max_upstream_calls": 34,
                "apq_max_entries": 56,
            },
            "vendors": {"agentex": {**AGENTEX, "max_response_bytes": 8192}},
        },
        {},
    )
    assert (parsed.failed_auth_per_minute, parsed.cache_max_bytes) == (7, 2048)
    assert (parsed.limits.max_document_bytes, parsed.limits.max_list_items) == (4096, 12)
    assert (parsed.max_upstream_calls, parsed.apq_max_entries) == (34, 56)
    assert [v.max_response_bytes for v in parsed.enabled] == [8192]


def typos(name: str) -> st.SearchStrategy[str]:
    """A name as a hand slips: two letters swapped, one dropped, doubled, or added."""
    position = st.integers(0, len(name) - 1)
    return st.one_of(
        position.filter(lambda i: i < len(name) - 1).map(
            lambda i: name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        ),
        position.map(lambda i: name[:i] + name[i + 1 :]),
        position.map(lambda i: name[:i] + name[i] + name[i:]),
        st.tuples(position, st.sampled_from("aeiouts_")).map(
            lambda p: name[: p[0]] + p[1] + name[p[0] :]
        ),
    )


@st.composite
def misspelt_setting(draw: st.DrawFn) -> tuple[str, str]:
    section = draw(st.sampled_from(sorted(SETTINGS_BY_SECTION)))
    name = draw(st.sampled_from(SETTINGS_BY_SECTION[section]).flatmap(typos))
    return section, name


@settings(max_examples=150, suppress_health_check=[HealthCheck.filter_too_much])
@given(misspelt_setting(), st.sampled_from([True, 3, 3.5, "x", ["x"]]))
def test_a_misspelt_setting_stops_start_up_naming_it(found: tuple[str, str], value) -> None:
    section, name = found
    if name in SETTINGS_BY_SECTION[section] or not name:
        return  # the slip made another real name
    assert refused(with_setting(section, name, value)) == f"{section}.{name}: unknown setting"


def test_unknown_sections_and_vendors_are_named_all_in_one_line() -> None:
    assert refused({**KEYS, "autth": {"open": True}}) == "autth: unknown section"
    assert refused({**KEYS, "open": True}) == "open: unknown setting"
    message = refused(
        {
            **KEYS,
            "vendors": {"orq": {**ORQ, "timeuot": 3}, "zapier": {}},
            "graphql": {"max_frist": 5},
        }
    )
    assert message.split("; ") == [
        "vendors.orq.timeuot: unknown setting",
        "vendors.zapier: unknown vendor (known: agentex, orq, subnoto, xpander)",
        "graphql.max_frist: unknown setting",
    ]


@pytest.mark.parametrize(
    "section", ["cache", "graphql", "auth", "limits", "cors", "tracing", "vendors"]
)
@pytest.mark.parametrize("value", ["x", 1, True, ["origin"]], ids=repr)
def test_a_section_given_as_a_value_is_refused(section, value) -> None:
    data = {"auth": {"open": True}, section: value}
    expected = f"{section}: must be a table ([{section}])"
    assert refused(data).startswith(expected)


def test_a_vendor_given_as_a_value_is_refused() -> None:
    assert refused({**KEYS, "vendors": {"orq": "https://api.orq.ai"}}).startswith(
        "vendors.orq: must be a table"
    )


@pytest.mark.parametrize(
    ("variable", "text", "accepted"),
    [
        ("TASK_GATEWAY_TRACING", "true", True),
        ("TASK_GATEWAY_TRACING", "1", True),
        ("TASK_GATEWAY_TRACING", "FALSE", False),
        ("TASK_GATEWAY_TRACING", "0", False),
        ("TASK_GATEWAY_TRACING", "yes", None),
        ("TASK_GATEWAY_TRACING", "off", None),
        ("TASK_GATEWAY_TRACING", "flase", None),
        ("TASK_GATEWAY_ORQ_ENABLED", "false", False),
        ("TASK_GATEWAY_ORQ_ENABLED", "on", None),
        ("TASK_GATEWAY_ORQ_ENABLED", "2", None),
    ],
)
def test_an_environment_boolean_is_true_false_1_or_0(variable, text, accepted) -> None:
    data = {**KEYS, "vendors": {"orq": ORQ}}
    if accepted is None:
        assert refused(data, {variable: text}) == f"{variable}: must be true, false, 1 or 0"
        return
    parsed = parse_settings(data, {variable: text})
    value = parsed.tracing if variable.endswith("TRACING") else parsed.vendors[Vendor.ORQ].enabled
    assert value is accepted


def test_environment_lists_have_no_empty_items() -> None:
    assert parse_settings({}, {"TASK_GATEWAY_API_KEYS": "a, b"}).api_keys == ("a", "b")
    for text in ("a,,b", "a,", ",", " , "):
        assert refused({}, {"TASK_GATEWAY_API_KEYS": text}).startswith("TASK_GATEWAY_API_KEYS:")


SECRETS = st.text(string.ascii_letters + string.digits + "-_+=.~!", min_size=12, max_size=40)


def misplaced(secret: str) -> list[tuple[dict, dict]]:
    """A secret in every wrong place a hand can put it: (file, environment)."""
    return [
        ({"auth": {"api_keys": secret}}, {}),
        ({"auth": {"api_keys": [secret, 3]}}, {}),
        ({"auth": {"api_keys": [secret], "open": secret}}, {}),
        ({"auth": {"apikeys": [secret]}}, {}),
        ({"api_keys": [secret]}, {}),
        ({"api_key": secret}, {}),
        ({**KEYS, "vendors": {"orq": {**ORQ, "api_key": [secret]}}}, {}),
        ({**KEYS, "vendors": {"orq": {**ORQ, "apikey": secret}}}, {}),
        ({**KEYS, "vendors": {"orq": {**ORQ, "agents": secret}}}, {}),
        ({**KEYS, "vendors": {"orq": {**ORQ, "timeout": secret}}}, {}),
        ({**KEYS, "vendors": {"orq": {**ORQ, "base_url": secret}}}, {}),
        ({**KEYS, "vendors": {"orq": {**ORQ, "base_url": f"ftp://u:{secret}@h"}}}, {}),
        ({**KEYS, "vendors": {"orq": {**ORQ, "base_url": f"https://u:{secret}@h"}}}, {}),
        ({**KEYS, "vendors": {"agentex": {**AGENTEX, "status_map": {"x": secret}}}}, {}),
        ({**KEYS, "cache": {"url": f"memcached://:{secret}@h"}}, {}),
        ({**KEYS, "cache": {"url": secret}}, {}),
        ({**KEYS, "cors": secret}, {}),
        ({**KEYS, "tracing": {"enabled": secret}}, {}),
        ({}, {"TASK_GATEWAY_API_KEYS": f"{secret},,"}),
        ({**KEYS}, {"TASK_GATEWAY_TRACING": secret}),
        ({**KEYS, "vendors": {"orq": ORQ}}, {"TASK_GATEWAY_ORQ_ENABLED": secret}),
        ({**KEYS, "vendors": {"orq": ORQ}}, {"TASK_GATEWAY_ORQ_BASE_URL": secret}),
    ]


@settings(max_examples=25, deadline=None)
@given(SECRETS)
def test_no_message_repeats_a_secret(secret: str) -> None:
    for data, env in misplaced(secret):
        message = refused(data, env)
        assert secret not in message, (data, env, message)
        assert secret[:8] not in message, (data, env, message)
