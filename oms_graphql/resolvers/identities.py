"""API tokens over GraphQL (ADMIN), and the check that a presented token holds before anything runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from oms_graphql.domain import access
from oms_graphql.domain.identities import AuthenticationFailed, forget_token
from oms_graphql.resolvers.common import context, db_id, run_mutation
from oms_graphql.schema.context import Caller
from oms_graphql.schema.identities import (
    ApiToken,
    ApiTokenCreateInput,
    ApiTokenCreatePayload,
    ApiTokenRevokeInput,
    ApiTokenRevokePayload,
)
from oms_graphql.schema.permissions import ADMIN
from oms_graphql.schema.relay import Connection, paginate


class Authenticate(SchemaExtension):
    """A token that is presented but does not hold answers one UNAUTHENTICATED error, and nothing runs.

    (No token at all is the anonymous caller: the fields it may not call say FORBIDDEN / UNAUTHENTICATED.)
    """

    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context.context
        try:
            await ctx.caller()
        except AuthenticationFailed as failure:
            self.execution_context.result = GraphQLExecutionResult(
                data=None, errors=[GraphQLError(failure.message, extensions={"code": "UNAUTHENTICATED"})]
            )
        yield


@strawberry.type
class IdentityQuery:
    @strawberry.field(
        description="Every API token, newest first (never the tokens themselves).", permission_classes=ADMIN
    )
    async def api_tokens(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[ApiToken]:
        return await paginate(
            context(info).database, access.list_api_tokens(), ApiToken.from_row, first=first, after=after
        )


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(
        description="Make an API token. The token is in the payload this once; only its hash is stored.",
        permission_classes=ADMIN,
    )
    async def api_token_create(self, info: Info, input: ApiTokenCreateInput) -> ApiTokenCreatePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            customer_id = db_id(input.customer_id, "Customer", ("customerId",)) if input.customer_id else None
            row, plaintext = await access.create_api_token(
                session, role=input.role, name=input.name, customer_id=customer_id, expires_at=input.expires_at
            )
            return {"token": plaintext, "api_token": ApiToken.from_row(row)}

        return await run_mutation(info, ApiTokenCreatePayload, work)

    @strawberry.mutation(
        description="Revoke an API token: requests that present it are refused from now on (UNAUTHENTICATED).",
        permission_classes=ADMIN,
    )
    async def api_token_revoke(self, info: Info, input: ApiTokenRevokeInput) -> ApiTokenRevokePayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, Any]:
            row = await access.revoke_api_token(session, db_id(input.id, "ApiToken"))
            forget_token(row.token_hash)
            return {"api_token": ApiToken.from_row(row)}

        return await run_mutation(info, ApiTokenRevokePayload, work)
