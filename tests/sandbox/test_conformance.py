"""Conformance: schemathesis drives the Agentex and xpander simulators from the vendors' own
OpenAPI documents (copied from the seed pages into ``openapi/``), over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, assume, given, settings

from gateway.core.records import Vendor
from gateway.sandbox import SANDBOX_CREDENTIALS

HERE = Path(__file__).parent / "openapi"
HEADERS = {Vendor.AGENTEX: {}, Vendor.XPANDER: {"x-api-key": SANDBOX_CREDENTIALS[Vendor.XPANDER]}}


def operations(vendor: Vendor) -> list:
    schema = schemathesis.openapi.from_dict(
        yaml.safe_load((HERE / f"{vendor.value}.yaml").read_text())
    )
    return [result.ok() for result in schema.get_all_operations()]


CASES = [(v, op) for v in (Vendor.AGENTEX, Vendor.XPANDER) for op in operations(v)]


@pytest.mark.parametrize(("vendor", "operation"), CASES, ids=[op.label for _, op in CASES])
def test_the_simulator_conforms_to_the_vendors_openapi(sandbox_server, vendor, operation) -> None:
    base_url = f"{sandbox_server}/{vendor.value}"

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case) -> None:
        # A path parameter with "/" (or "", ".", "..") names another URL altogether: HTTP
        # routing, not the vendor's handler, answers that (404), as in the vendors' own
        # servers, so such cases say nothing about conformance.
        assume(
            all(
                str(v) not in ("", ".", "..") and "/" not in str(v)
                for v in (case.path_parameters or {}).values()
            )
        )
        # Documented status codes only, bodies matching the documented schemas, no 5xx.
        case.call_and_validate(base_url=base_url, headers=HEADERS[vendor])

    check()
