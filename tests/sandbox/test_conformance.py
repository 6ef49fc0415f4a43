"""Conformance: schemathesis drives the Agentex and xpander simulators from the vendors' own
OpenAPI documents, over real HTTP. The documents are copies of the seed pages in
``openapi/`` (Agentex: seeds 000 + 001 merged, plus the 404/400 the open-source server
answers, marked there; xpander: seed 002 verbatim).

Every generated request, valid (positive) and invalid (negative), must get a documented
status code, never a 5xx, with the documented content type and a body matching the
documented schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.core.records import Vendor
from gateway.sandbox import SANDBOX_CREDENTIALS, Sandbox

OPENAPI = Path(__file__).parent / "openapi"
HEADERS = {
    Vendor.AGENTEX: {},
    Vendor.XPANDER: {"x-api-key": str(SANDBOX_CREDENTIALS[Vendor.XPANDER])},
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 25


def load(vendor: Vendor) -> Any:
    return schemathesis.openapi.from_dict(
        yaml.safe_load((OPENAPI / f"{vendor.value}.yaml").read_text())
    )


def operation(vendor: Vendor, method: str, path: str) -> Any:
    found = [result.ok() for result in load(vendor).get_all_operations()]
    [match] = [op for op in found if op.method.upper() == method and op.path == path]
    return match


AGENTEX_LIST = operation(Vendor.AGENTEX, "GET", "/tracker")
AGENTEX_PUT = operation(Vendor.AGENTEX, "PUT", "/tracker/{tracker_id}")
XPANDER_LIST = operation(Vendor.XPANDER, "GET", "/v1/agents/{agent_id}/tasks")


def routable(case: Any) -> bool:
    """A path parameter with a "/" (or "", ".", "..") names another URL altogether: HTTP
    routing answers that (404), in the vendors' own servers as here, before any handler, so
    such a case says nothing about the operation."""
    values = [unquote(str(v)) for v in (case.path_parameters or {}).values()]
    return all(v not in ("", ".", "..") and "/" not in v for v in values)


def negates_auth(case: Any) -> bool:
    """In negative mode schemathesis also drops or garbles the security header (xpander's
    ``x-api-key``). The vendor answers that 401, which its spec does not list: auth is
    tested on its own (test_xpander.py); here such cases are left out."""
    meta = case.meta
    components = meta.components if meta is not None else {}
    return any(
        getattr(location, "value", location) == "header" and info.mode is GenerationMode.NEGATIVE
        for location, info in components.items()
    )


def run(vendor: Vendor, base_url: str, strategy: Any, seen: set[int]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        assume(routable(case) and not negates_auth(case))
        response = case.call(base_url=base_url, headers=HEADERS[vendor], timeout=10)
        case.validate_response(response, checks=CHECKS)
        seen.add(response.status_code)

    check()


def test_the_documents_are_the_seeds_operations() -> None:
    agentex = yaml.safe_load((OPENAPI / "agentex.yaml").read_text())
    assert set(agentex["paths"]) == {"/tracker", "/tracker/{tracker_id}"}
    put = agentex["paths"]["/tracker/{tracker_id}"]["put"]["responses"]
    assert set(put) == {"200", "422", "404", "400"}
    xpander = yaml.safe_load((OPENAPI / "xpander.yaml").read_text())
    assert set(xpander["paths"]) == {"/v1/agents/{agent_id}/tasks"}
    assert set(xpander["paths"]["/v1/agents/{agent_id}/tasks"]["get"]["responses"]) == {
        "200",
        "422",
    }


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_agentex_list_conforms(sim_url: str, mode: GenerationMode) -> None:
    seen: set[int] = set()
    run(Vendor.AGENTEX, f"{sim_url}/agentex", AGENTEX_LIST.as_strategy(generation_mode=mode), seen)
    assert seen <= {200, 422}
    if mode is GenerationMode.NEGATIVE:
        assert 422 in seen


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_agentex_put_on_random_ids_conforms(sim_url: str, mode: GenerationMode) -> None:
    # Random ids name no tracker: 404, the open-source server's answer (documented in our
    # copy of the spec), or 422 for a body FastAPI refuses first.
    seen: set[int] = set()
    run(Vendor.AGENTEX, f"{sim_url}/agentex", AGENTEX_PUT.as_strategy(generation_mode=mode), seen)
    assert seen <= {404, 422}


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_agentex_put_on_real_trackers_conforms(
    sim_url: str, sim: Sandbox, mode: GenerationMode
) -> None:
    # A real tracker: 200 (the updated tracker), 400 for a random event cursor, or 422.
    trackers = sorted(sim.store(Vendor.AGENTEX))[:5]
    seen: set[int] = set()
    strategy = st.sampled_from(trackers).flatmap(
        lambda tracker: AGENTEX_PUT.as_strategy(
            generation_mode=mode, path_parameters={"tracker_id": tracker}
        )
    )
    run(Vendor.AGENTEX, f"{sim_url}/agentex", strategy, seen)
    assert seen <= {200, 400, 422}
    if mode is GenerationMode.POSITIVE:
        assert 200 in seen


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_xpander_list_on_random_agents_conforms(sim_url: str, mode: GenerationMode) -> None:
    seen: set[int] = set()
    run(Vendor.XPANDER, f"{sim_url}/xpander", XPANDER_LIST.as_strategy(generation_mode=mode), seen)
    assert seen <= {200, 422}
    if mode is GenerationMode.NEGATIVE:
        assert 422 in seen


def test_xpander_list_on_real_agents_conforms(sim_url: str, sim: Sandbox) -> None:
    # The agents that have tasks, so the item schema is checked against real items.
    seen: set[int] = set()
    strategy = st.sampled_from(sim.agents(Vendor.XPANDER)).flatmap(
        lambda agent: XPANDER_LIST.as_strategy(path_parameters={"agent_id": agent})
    )
    run(Vendor.XPANDER, f"{sim_url}/xpander", strategy, seen)
    assert 200 in seen and seen <= {200, 422}


def test_a_non_empty_listing_validates_against_the_documented_schema(
    sim_url: str, sim: Sandbox
) -> None:
    """One deterministic case per operation with data in it, so the item schemas are
    certainly exercised even if the generator finds only empty pages."""
    agent = sim.agents(Vendor.XPANDER)[0]
    for op, vendor, path_parameters, query in (
        (AGENTEX_LIST, Vendor.AGENTEX, {}, {"limit": 50}),
        (XPANDER_LIST, Vendor.XPANDER, {"agent_id": agent}, {"per_page": 50}),
    ):
        case = op.Case(path_parameters=path_parameters, query=query)
        response = case.call(base_url=f"{sim_url}/{vendor.value}", headers=HEADERS[vendor])
        assert response.status_code == 200
        body = response.json()
        assert body if vendor is Vendor.AGENTEX else body["items"]
        case.validate_response(response, checks=CHECKS)
