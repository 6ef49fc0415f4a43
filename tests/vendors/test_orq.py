"""What only orq has: a status derived from ``state`` and cursor paging by ``_id``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.core.contract import ListQuery
from gateway.core.errors import UpstreamBadResponseError
from gateway.core.records import TaskStatus, Vendor
from gateway.sandbox import Sandbox
from gateway.vendors import orq
from tests.vendors.conftest import Make
from tests.vendors.normalized import S


@pytest.mark.parametrize(
    ("state", "vendor_status", "status"),
    [
        ({"error": "boom", "waiting_for_approval": True, "inactive": True}, "errored", S.FAILED),
        (
            {"error": None, "waiting_for_approval": True, "inactive": True},
            "approval_required",
            S.AWAITING_APPROVAL,
        ),
        ({"error": "", "waiting_for_approval": False, "inactive": True}, "inactive", S.IDLE),
        ({"waiting_for_approval": False, "inactive": False}, "in_progress", S.RUNNING),
    ],
)
def test_orq_derives_the_status_from_state_in_precedence(
    state: dict[str, Any], vendor_status: str, status: TaskStatus
) -> None:
    item = {"_id": "01JJ1HDHN79XAS7A01WB3HYSDB", "created": "2026-01-01T00:00:00.000Z"}
    record = orq._to_record({**item, "state": state}, "support-triage")
    assert (record.vendor_status, record.status) == (vendor_status, status)
    assert record.summary == (state.get("error") or None)
    assert record.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert record.updated_at is None  # no ``updated``: shown as null, not as ``created``


async def test_orq_continues_after_the_last_id_a_full_page_has(make: Make, sb: Sandbox) -> None:
    rows = next(iter(sb.store(Vendor.ORQ).values()))[:200]
    for page, cursor in (
        ([*rows[:199], {"name": "no id"}], rows[198]["_id"]),
        ([{"name": "no id"}] * 200, None),
    ):
        body = {"tasks": page, "overall_total": 1000}
        transport = httpx.MockTransport(lambda request, body=body: httpx.Response(200, json=body))
        connector = make(Vendor.ORQ, transport=transport)
        source = connector.sources(ListQuery())[0]
        if cursor is None:
            with pytest.raises(UpstreamBadResponseError):
                await connector.fetch_page(source, None)
        else:
            result = await connector.fetch_page(source, None)
            assert (result.next_token, result.skipped, result.total) == (cursor, 1, 1000)
