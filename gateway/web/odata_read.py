"""Reading ``Tasks`` from the index: the SQL of one page, its keyset position, its count.

The order is OData's: the requested keys, nulls before values ascending and after them
descending (the protocol's rule, and SQLite's own), then ``id``, so the order is total and a
page ends at an exact position. The next page starts strictly after that position
(``after``), which stays right while rows are added, changed or removed around it, where an
offset would repeat or skip rows. Only the first page applies ``$skip``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.web.odata_model import Property
from gateway.web.odata_options import Options, OrderKey

Clause = sa.ColumnElement[bool]


def _equal(column: sa.ColumnElement[Any], value: Any) -> Clause:
    return column.is_(None) if value is None else column == value


def _beyond(key: OrderKey, value: Any) -> Clause:
    """Rows strictly after ``value`` in this key's direction, nulls counted smallest."""
    column = key.prop.column
    if key.descending:
        if value is None:
            return sa.false()
        return sa.or_(column < value, column.is_(None)) if key.prop.nullable else column < value
    return column.is_not(None) if value is None else column > value


def after_position(order: Sequence[OrderKey], values: Sequence[Any]) -> Clause:
    """Rows after the row whose order keys hold ``values``: for some key, equal on every
    key before it and beyond it on that one."""
    branches = []
    for i, key in enumerate(order):
        prefix = [_equal(order[j].prop.column, values[j]) for j in range(i)]
        branches.append(sa.and_(*prefix, _beyond(key, values[i])))
    return sa.or_(*branches)


def order_by(order: Sequence[OrderKey]) -> list[sa.UnaryExpression[Any]]:
    """The keys as SQL; a column that is never null gets no NULLS clause, so the database
    can walk its index (PostgreSQL's indexes keep nulls last ascending)."""
    return [
        (column.desc() if key.descending else column.asc())
        if not key.prop.nullable
        else column.desc().nulls_last()
        if key.descending
        else column.asc().nulls_first()
        for key in order
        for column in [key.prop.column]
    ]


def page_statement(
    source: sa.FromClause,
    selected: Sequence[Property],
    conditions: Sequence[Clause],
    options: Options,
    limit: int,
) -> sa.Select[Any]:
    """At most ``limit`` rows of the selected properties and then the order keys."""
    where = list(conditions)
    if options.after is not None:
        where.append(after_position(options.order, options.after))
    columns: list[Any] = [p.column for p in selected] + [key.prop.column for key in options.order]
    statement: sa.Select[Any] = (
        sa.select(*columns).select_from(source).where(*where).order_by(*order_by(options.order))
    )
    if options.after is None and options.skip:
        statement = statement.offset(options.skip)
    return statement.limit(limit)


async def read_page(
    conn: AsyncConnection,
    source: sa.FromClause,
    selected: Sequence[Property],
    conditions: Sequence[Clause],
    options: Options,
    size: int,
) -> tuple[list[dict[str, Any]], tuple[Any, ...] | None]:
    """The page's entities (selected properties, JSON-ready), and the position after its last
    row when more rows follow it."""
    result = await conn.execute(page_statement(source, selected, conditions, options, size + 1))
    rows = result.all()
    more = len(rows) > size
    rows = rows[:size]
    entities = [
        {p.name: _json_value(v) for p, v in zip(selected, row[: len(selected)], strict=True)}
        for row in rows
    ]
    last = tuple(rows[-1][len(selected) :]) if more and rows else None
    return entities, last


async def count_rows(
    conn: AsyncConnection, source: sa.FromClause, conditions: Sequence[Clause]
) -> int:
    statement = sa.select(sa.func.count()).select_from(source).where(*conditions)
    return int((await conn.execute(statement)).scalar_one())


def _json_value(value: Any) -> Any:
    """Times as OData writes ``Edm.DateTimeOffset``: ISO 8601 in UTC with a ``Z``."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value
