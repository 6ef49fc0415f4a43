"""Mutations: writes go to the vendor first, then the cache is invalidated."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from gateway.core.cache import caller_fingerprint
from gateway.graph.context import GraphContext
from gateway.graph.inputs import UpdateTrackerInput
from gateway.graph.types import TrackerType
from gateway.web.client_keys import header_key

Info = strawberry.Info[GraphContext, None]


@strawberry.type(description="Change vendor records.")
class Mutation:
    @strawberry.mutation(
        description="Update an Agentex tracker (a PUT to Agentex). Returns the tracker as "
        "Agentex now holds it; later reads never show the old value from cache. Updates of "
        "one tracker through the gateway run one at a time (across replicas sharing Redis), "
        "so partial updates of different fields never undo each other."
    )
    async def update_tracker(
        self,
        info: Info,
        input: Annotated[UpdateTrackerInput, strawberry.argument(description="The change.")],
    ) -> TrackerType:
        given = {
            name
            for name, value in (
                ("status", input.status),
                ("statusReason", input.status_reason),
                ("lastProcessedEventId", input.last_processed_event_id),
            )
            if value is not strawberry.UNSET
        }

        def value(v: str | None) -> str | None:
            return None if v is strawberry.UNSET else v

        return await info.context.service.update_tracker(  # type: ignore[return-value]
            input.id,
            info.context.state,
            status=value(input.status),
            status_reason=value(input.status_reason),
            last_processed_event_id=value(input.last_processed_event_id),
            fields=frozenset(given),
            idempotency_key=input.idempotency_key,
            caller=caller_fingerprint(
                _client_key(info.context.request), info.context.state.credentials
            ),
        )


def _client_key(request: Any) -> str | None:
    """The key the caller authenticated with (stored by the auth middleware), else the one
    it sent (an open gateway checks none, but callers still keep their own idempotency)."""
    scope = getattr(request, "scope", None)
    if not isinstance(scope, dict):
        return None
    key = scope.get("state", {}).get("client_key")
    return key if isinstance(key, str) else header_key(scope.get("headers", ()))
