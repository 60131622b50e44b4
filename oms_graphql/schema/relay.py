"""Relay connections with cursors, pageInfo and totalCount; pages capped at 100."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry
from sqlalchemy import Select, func, select

from oms_graphql.db.engine import Database
from oms_graphql.domain.errors import DomainError

T = TypeVar("T")
MAX_PAGE = 100


@strawberry.type(description="Where a page sits in the whole list.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="One item of a page, with its cursor.")
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    count_query: strawberry.Private[Any]
    database: strawberry.Private[Any]

    @strawberry.field(description="How many items the whole list has (with the filter applied).")
    async def total_count(self) -> int:
        async with self.database.session() as session:
            return int(await session.scalar(self.count_query) or 0)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str | None, field: str) -> int | None:
    if cursor is None:
        return None
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        # ASCII digits, and an offset a database can skip to (a longer one overflows its integer).
        if kind == "offset" and value.isascii() and value.isdigit() and len(value) <= 12:
            return int(value)
    except ValueError:
        pass
    raise DomainError(f"{field} is not a cursor from this list.", (field,), "INVALID_CURSOR")


async def paginate(
    database: Database,
    query: Select,  # type: ignore[type-arg]
    to_node: Callable[[Any], T],
    *,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
    scalars: bool = True,
) -> Connection[T]:
    """One page of ``query`` (already filtered and ordered)."""
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise DomainError(f"{name} must be between 0 and {MAX_PAGE}.", (name,), "PAGE_SIZE")
    start = (_offset(after, "after") or -1) + 1 if after else 0
    end = _offset(before, "before")
    if last is not None and first is None:
        stop = end if end is not None else None
        if stop is None:
            total = await _count(database, query)
            stop = total
        start = max(start, stop - last)
        limit = stop - start
    else:
        limit = first if first is not None else (MAX_PAGE if last is None else last)
        if end is not None:
            limit = min(limit, max(0, end - start))
    async with database.session() as session:
        result = await session.execute(query.offset(start).limit(limit + 1))
        rows = list(result.scalars().all() if scalars else result.all())
    has_more = len(rows) > limit
    rows = rows[:limit]
    edges = [Edge(cursor=_cursor(start + index), node=to_node(row)) for index, row in enumerate(rows)]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_more,
            has_previous_page=start > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count_query=select(func.count()).select_from(query.order_by(None).subquery()),
        database=database,
    )


async def _count(database: Database, query: Select[Any]) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)
