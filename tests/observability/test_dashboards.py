"""The operators' dashboard and alert rules (deploy/grafana, deploy/prometheus): valid for
Prometheus's own promtool, proven to fire and to stay quiet, and naming only metrics a running
gateway exports on /metrics.

promtool comes from Debian's ``prometheus`` package, which ``scripts/test.sh`` installs when it
is missing; without it these tests fail and say so, rather than skipping.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Settings
from tests.conftest import OwnSandbox

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "task-gateway.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
OPERATING = ROOT / "docs" / "operating.md"

GRAFANA_VARIABLES = {"__rate_interval": "5m", "__range": "1h", "__interval": "1m", "vendor": ".*"}
"""What Grafana puts in place of the dashboard's variables before Prometheus sees a query."""
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
}
"""The sample names each metric family type is exposed under."""
REQUIRED_ALERTS = {
    "TaskGatewayVendorDown",
    "TaskGatewayVendorErrors",
    "TaskGatewayGraphQLErrors",
    "TaskGatewayVendorBudgetExhausted",
    "TaskGatewayVendorRateLimited",
    "TaskGatewayIndexLag",
}
"""What issue 19 asks for: vendor down, error ratio, budget exhausted (a 429 too), index lag."""
BUDGET_PER_MINUTE = 600
SAMPLES_WAIT_SECONDS = 30.0
RECENT = "query Recent { tasks(first: 5) { nodes { id vendor status } } }"
QUERIES = [RECENT, RECENT, "query Broken { nope }"]
"""An answer, the same from the response cache, and an error."""


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool") or shutil.which("promtool", path="/usr/bin")
    assert path, "promtool is missing: run scripts/test.sh (installs Debian's prometheus)"
    return subprocess.run(
        [path, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def grafana_expanded(expr: str) -> str:
    """``expr`` as Grafana sends it: ``$name`` and ``${name}`` replaced (an unknown variable
    fails the test, so a typo in a variable name cannot hide)."""

    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        assert name in GRAFANA_VARIABLES, f"unknown dashboard variable ${name} in {expr!r}"
        return GRAFANA_VARIABLES[name]

    return re.sub(r"\$(?:(\w+)|\{(\w+)(?::\w+)?\})", value, expr)


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every query the dashboard sends: panel targets and the metric of
    each ``label_values(metric, label)`` variable."""
    board = dashboard()
    found = []
    for panel in panels(board):
        for target in panel.get("targets", []):
            where = f"panel {panel['title']!r} target {target['refId']}"
            found.append((where, grafana_expanded(target["expr"])))
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = re.fullmatch(r"\s*label_values\((.+),\s*\w+\s*\)\s*", text)
        assert match, f"variable {variable['name']}: not label_values(metric, label): {text!r}"
        found.append((f"variable {variable['name']}", grafana_expanded(match[1])))
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, read from its syntax tree (promql-parser), so
    function names, label names, label values and durations are never taken for metrics."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a plain metric name in {expr!r}"
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def families(metrics_text: str) -> dict[str, set[str]]:
    """Each metric family /metrics declares, with the sample names it is exposed under (a
    counter ``x`` as ``x_total``, a histogram as ``x_bucket``, ``x_sum``, ``x_count``),
    whether or not it has a sample yet."""
    return {
        family.name: {family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",))}
        for family in text_string_to_metric_families(metrics_text)
    }


def sample_names(metrics_text: str) -> set[str]:
    return {
        sample.name
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
    }


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_the_alert_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", ALERTS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_the_alerts_fire_on_their_series_and_stay_quiet_on_look_alikes() -> None:
    tested = promtool("test", "rules", ALERT_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    checks = [
        check
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for check in test["alert_rule_test"]
    ]
    fired = {check["alertname"] for check in checks if check["exp_alerts"]}
    quiet = {check["alertname"] for check in checks if not check["exp_alerts"]}
    alerts = {rule["alert"] for rule in alert_rules()}
    assert alerts - fired == set(), "alerts never shown to fire"
    assert alerts - quiet == set(), "alerts never shown to stay quiet"


def test_every_alert_waits_is_graded_explained_and_has_a_runbook() -> None:
    anchors = heading_anchors(OPERATING.read_text())
    rules = alert_rules()
    assert {"critical", "warning"} >= {rule["labels"]["severity"] for rule in rules}
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: no for:"
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operating.md" and anchor in anchors, f"{name}: no runbook {anchor}"
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS


def test_the_dashboard_is_a_grafana_model_over_a_chosen_prometheus() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["vendor"]["type"] == "query"
    assert "label_values(" in json.dumps(variables["vendor"]["query"])
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_dashboard_query_is_promql_that_prometheus_accepts(tmp_path: Path) -> None:
    """Each query (variables expanded) as a recording rule: promtool parses it with
    Prometheus's own parser."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_metric_name_reader_finds_names_and_only_names() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (vendor, le) (rate(a_bucket{status=~"5..|b_total"}'
        "[5m]))) / on (vendor) group_left max_over_time(c[1h:5m]) and d offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "c", "d"}


def named_metrics() -> dict[str, list[str]]:
    """Every metric name the dashboard and the alert rules use, with where."""
    named: dict[str, list[str]] = {}
    for where, expr in dashboard_queries():
        for name in metric_names(expr):
            named.setdefault(name, []).append(where)
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            named.setdefault(name, []).append(f"alert {rule['alert']}")
    return named


def every_metric_settings(settings: Settings, index_path: Path) -> dict[str, Any]:
    """Changes that make every metric the gateway has appear: a budget on every vendor, the
    task index on, operation names listed."""
    vendors = {
        vendor: replace(config, max_requests_per_minute=BUDGET_PER_MINUTE)
        for vendor, config in settings.vendors.items()
    }
    return {
        "vendors": vendors,
        "index_url": f"sqlite:///{index_path}",
        "metric_operations": ("Recent", "Broken"),
    }


def test_every_metric_the_dashboard_and_alerts_name_is_exported(
    own: OwnSandbox, tmp_path: Path
) -> None:
    """A sample under every name, not just a declared family: the panels show data and the
    alerts can fire. Some samples appear only once background work has run (a sync pass),
    so /metrics is read again until they are all there or ``SAMPLES_WAIT_SECONDS`` passed.
    The module's own sandbox, and the gateway stopped after: its index sync never adds
    calls to the shared sandbox other tests count."""
    gateway = own.gateway(**every_metric_settings(own.settings, tmp_path / "index.db"))
    try:
        for query in QUERIES:
            gateway.query(query)
        named = named_metrics()
        waited_until = time.monotonic() + SAMPLES_WAIT_SECONDS
        while True:
            text = gateway.http.get("/metrics").text
            sampled = sample_names(text)
            if set(named) <= sampled or time.monotonic() > waited_until:
                break
            time.sleep(0.2)
    finally:
        gateway.close()
    declared = set().union(*families(text).values())

    missing = {
        name: f"{'declared, no sample' if name in declared else 'not exported'}: "
        + ", ".join(places)
        for name, places in sorted(named.items())
        if name not in sampled
    }
    assert not missing, "named by the dashboard or the alerts, but missing from /metrics:\n" + (
        "\n".join(f"  {name} ({why})" for name, why in missing.items())
    )


def test_every_metric_the_gateway_exports_is_on_the_dashboard(
    own: OwnSandbox, tmp_path: Path
) -> None:
    """The other way round: a metric added to the gateway gets a panel (prometheus_client's
    ``*_created`` timestamps aside)."""
    gateway = own.gateway(**every_metric_settings(own.settings, tmp_path / "index.db"))
    try:
        exported = families(gateway.http.get("/metrics").text)
    finally:
        gateway.close()
    shown = set(named_metrics())
    unshown = sorted(
        family
        for family, names in exported.items()
        if not family.endswith("_created") and not names & shown
    )
    assert not unshown, f"exported but on no panel of {DASHBOARD.name}: {unshown}"


def test_the_compose_monitoring_profile_wires_the_same_files() -> None:
    """``docker compose --profile monitoring`` (no Docker engine here): Prometheus's config is
    valid for promtool and loads these rules, scrapes the gateway service's port, and Grafana
    is provisioned with that Prometheus and this dashboard; a plain ``up`` is unchanged."""
    checked = promtool("check", "config", ROOT / "deploy" / "prometheus" / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]
    mounts = {}
    for name in ("prometheus", "grafana"):
        assert compose[name]["profiles"] == ["monitoring"]
        for volume in compose[name]["volumes"]:
            source, target, *_ = volume.split(":")
            assert (ROOT / "deploy" / source).exists(), volume
            mounts[target] = (ROOT / "deploy" / source).resolve()

    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [rules] = config["rule_files"]
    assert mounts[f"/etc/prometheus/{rules}"] == ALERTS
    assert mounts["/etc/prometheus/prometheus.yml"].name == "prometheus.yml"
    [scrape] = config["scrape_configs"]
    [dns] = scrape["dns_sd_configs"]
    assert dns["names"] == ["gateway"] and "gateway" in compose
    assert f"EXPOSE {dns['port']}" in (ROOT / "Dockerfile").read_text()

    provisioning = "/etc/grafana/provisioning"
    [source] = yaml.safe_load(
        (mounts[f"{provisioning}/datasources"] / "prometheus.yml").read_text()
    )["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"]
    assert source["url"] == "http://prometheus:9090"
    assert "9090:9090" in compose["prometheus"]["ports"]
    [provider] = yaml.safe_load(
        (mounts[f"{provisioning}/dashboards"] / "task-gateway.yml").read_text()
    )["providers"]
    assert mounts[provider["options"]["path"] + "/task-gateway.json"] == DASHBOARD
