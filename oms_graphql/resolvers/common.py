"""Helpers every resolver uses: ids, the caller, and running a mutation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from oms_graphql.domain import audit
from oms_graphql.domain.errors import DomainError, NotFound
from oms_graphql.schema.context import Caller, Context
from oms_graphql.schema.ids import from_global_id
from oms_graphql.schema.payloads import user_errors

P = TypeVar("P")


def context(info: Info) -> Context:
    return info.context  # type: ignore[no-any-return]


def db_id(global_id: str, type_name: str, field: tuple[str, ...] = ("id",)) -> int:
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] != type_name:
        raise NotFound(f"{global_id!r} is not the id of a {type_name}.", field)
    return decoded[1]


async def run_mutation(
    info: Info,
    payload: Callable[..., P],
    work: Callable[[AsyncSession, Caller], Awaitable[dict[str, Any]]],
) -> P:
    """Run ``work`` in one transaction; a domain error rolls it back and becomes userErrors.

    The mutation's audit entry (resolvers/audit.py) is written in the same transaction, so
    the change and its record are kept together or not at all.
    """
    ctx = context(info)
    caller = await ctx.caller()
    try:
        async with ctx.database.session() as session, session.begin():
            result = await work(session, caller)
            if ctx.audit is not None:
                await audit.record(session, ctx.audit, "USER_ERROR" if result.get("user_errors") else "OK")
    except DomainError as error:
        return payload(user_errors=user_errors(error))
    return payload(**result)
