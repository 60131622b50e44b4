"""Relay connections with cursors, pageInfo and totalCount; pages capped at 100."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal as PyDecimal
from typing import Any, Generic, TypeVar

import strawberry
from sqlalchemy import Select, func, select, tuple_

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


def _edge_cursor(self: Edge[Any]) -> str:
    return self.keyset.cursor(self.position) if self.keyset is not None else _cursor(self.position)


@strawberry.type(description="One item of a page, with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(resolver=_edge_cursor)
    node: T
    # Where the item is: its offset, or its row for a keyset's cursor (encoded only when asked).
    position: strawberry.Private[Any]
    keyset: strawberry.Private[Any]


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
    """One page of ``query`` (already filtered and ordered), by offset."""
    _check_page_sizes(first, last)
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
    edges = [Edge(position=start + index, keyset=None, node=to_node(row)) for index, row in enumerate(rows)]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_more,
            has_previous_page=start > 0,
            start_cursor=_edge_cursor(edges[0]) if edges else None,
            end_cursor=_edge_cursor(edges[-1]) if edges else None,
        ),
        count_query=select(func.count()).select_from(query.order_by(None).subquery()),
        database=database,
    )


def _check_page_sizes(first: int | None, last: int | None) -> None:
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise DomainError(f"{name} must be between 0 and {MAX_PAGE}.", (name,), "PAGE_SIZE")


async def _count(database: Database, query: Select[Any]) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


# --- keyset pagination -----------------------------------------------------------


@dataclass(frozen=True)
class Keyset:
    """A list's sort as a key that is unique per row: (placed_at, id), (number,) …

    A keyset cursor holds the key of its row, so the next page starts right after that row
    however many rows arrived before it, and a deep page costs what the first one does (an
    index range scan, no OFFSET).
    """

    name: str
    columns: tuple[Any, ...]
    descending: bool = False

    def key_of(self, row: Any) -> tuple[Any, ...]:
        return tuple(getattr(row, column.key) for column in self.columns)

    def cursor(self, row: Any) -> str:
        values = [_encode_value(value) for value in self.key_of(row)]
        return base64.urlsafe_b64encode(json.dumps([self.name, values]).encode()).decode()

    def parse(self, cursor: str | None, field: str) -> tuple[Any, ...] | None:
        if cursor is None:
            return None
        try:
            name, values = json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())
            if name == self.name and isinstance(values, list) and len(values) == len(self.columns):
                return tuple(_decode_value(value, column) for value, column in zip(values, self.columns, strict=True))
        except (ValueError, TypeError, ArithmeticError):
            pass
        raise DomainError(f"{field} is not a cursor from this list.", (field,), "INVALID_CURSOR")

    def order_by(self, backwards: bool) -> list[Any]:
        descending = self.descending != backwards
        return [column.desc() if descending else column.asc() for column in self.columns]

    def beyond(self, key: tuple[Any, ...], backwards: bool) -> Any:
        """Rows after ``key`` in the list's order (before it when ``backwards``)."""
        lower = self.descending != backwards
        if len(self.columns) == 1:
            column = self.columns[0]
            return column < key[0] if lower else column > key[0]
        # A row-value comparison: PostgreSQL turns it into one index range (SQLite has them too).
        columns = tuple_(*self.columns)
        return columns < key if lower else columns > key


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, PyDecimal):
        return str(value)
    return value


def _decode_value(value: Any, column: Any) -> Any:
    kind = getattr(column.type, "impl", column.type).python_type  # a TypeDecorator's stored type
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed
    if kind is PyDecimal:
        number = PyDecimal(value) if isinstance(value, str) else _invalid()
        return number if number.is_finite() else _invalid()
    if kind is int:
        # bool is an int, and a key beyond 64 bits overflows the database's integer.
        return value if type(value) is int and abs(value) < 2**63 else _invalid()
    return value if isinstance(value, kind) else _invalid()


def _invalid() -> Any:
    raise ValueError("not a key of this list")


async def paginate_keyset(
    database: Database,
    query: Select,  # type: ignore[type-arg]
    keyset: Keyset,
    to_node: Callable[[Any], T],
    *,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[T]:
    """One page of ``query`` (filtered, not ordered) in ``keyset``'s order, by key.

    ``first``/``after`` read forwards; ``last`` (without ``first``) reads backwards from
    ``before`` or from the end. A cursor is the key of its row, so it keeps its place
    while rows are added before or after it.
    """
    _check_page_sizes(first, last)
    after_key, before_key = keyset.parse(after, "after"), keyset.parse(before, "before")
    backwards = last is not None and first is None
    limit = last if last is not None and backwards else first if first is not None else MAX_PAGE
    page = query
    if after_key is not None:
        page = page.where(keyset.beyond(after_key, backwards=False))
    if before_key is not None:
        page = page.where(keyset.beyond(before_key, backwards=True))
    async with database.session() as session:
        rows = list((await session.scalars(page.order_by(*keyset.order_by(backwards)).limit(limit + 1))).all())
    has_more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    edges = [Edge(position=row, keyset=keyset, node=to_node(row)) for row in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            # Past a cursor there is at least the cursor's own row.
            has_next_page=before_key is not None if backwards else has_more,
            has_previous_page=has_more if backwards else after_key is not None,
            start_cursor=_edge_cursor(edges[0]) if edges else None,
            end_cursor=_edge_cursor(edges[-1]) if edges else None,
        ),
        count_query=select(func.count()).select_from(query.subquery()),
        database=database,
    )
