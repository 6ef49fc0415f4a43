"""Subscriptions: live task changes over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from gateway.graph.context import GraphContext
from gateway.graph.inputs import TaskFilter, to_list_query
from gateway.graph.types import TaskType


@strawberry.type(description="Live updates.")
class Subscription:
    @strawberry.subscription(
        description="A task, each time its status or update time changes in any vendor. "
        "Vendors have no push API: with the task index, the changes its sync finds; without "
        "it, the gateway polls the newest tasks on an interval, one poll shared by every "
        "subscriber that acts with the same vendor keys, and diffs."
    )
    async def task_changed(
        self,
        info: strawberry.Info[GraphContext, None],
        filter: Annotated[
            TaskFilter | None, strawberry.argument(description="Only changes of these tasks.")
        ] = None,
    ) -> AsyncGenerator[TaskType, None]:
        query, vendors = to_list_query(filter, None)
        context = info.context
        async for record in context.poller.subscribe(query, vendors, context.state.credentials):
            yield record
