"""API tokens and the audit log: types, inputs and payloads (ADMIN only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from oms_graphql.db import models
from oms_graphql.schema.ids import to_global_id
from oms_graphql.schema.scalars import JSON
from oms_graphql.schema.types import Node, UserError


@strawberry.type(description="An API token: who or what it is for, its role, and its life. Never the token itself.")
class ApiToken(Node):
    name: str = strawberry.field(description="Who or what uses the token.")
    role: str = strawberry.field(description="ADMIN, OPERATOR, VIEWER, CUSTOMER, ...")
    customer_id: strawberry.ID | None = strawberry.field(description="A CUSTOMER token's customer (global id).")
    created_at: datetime = strawberry.field(description="When it was made.")
    expires_at: datetime | None = strawberry.field(description="When it stops working; null: never.")
    last_used_at: datetime | None = strawberry.field(
        description="When a request last presented it (to within a minute); null: never used."
    )
    revoked_at: datetime | None = strawberry.field(description="When it was revoked; null: not revoked.")

    @classmethod
    def from_row(cls, row: models.ApiToken) -> ApiToken:
        return cls(
            id=strawberry.ID(to_global_id("ApiToken", row.id)),
            name=row.name,
            role=row.role,
            customer_id=strawberry.ID(to_global_id("Customer", row.customer_id)) if row.customer_id else None,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


@strawberry.input(description="A new API token.")
class ApiTokenCreateInput:
    name: str = strawberry.field(description="Who or what will use it, e.g. 'ops console' (1-100 characters).")
    role: str = strawberry.field(description="ADMIN, OPERATOR, VIEWER or CUSTOMER.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="The customer a CUSTOMER token belongs to (required for CUSTOMER, else none)."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="When it stops working (a future time with its offset); default never."
    )


@strawberry.type(description="The new token, shown this once: only its hash is kept.")
class ApiTokenCreatePayload:
    token: str | None = strawberry.field(
        default=None, description="The token: send it as `Authorization: Bearer <token>`. It is not shown again."
    )
    api_token: ApiToken | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="The token to revoke.")
class ApiTokenRevokeInput:
    id: strawberry.ID = strawberry.field(description="The ApiToken's global id.")


@strawberry.type(description="The revoked token: it no longer lets anyone in.")
class ApiTokenRevokePayload:
    api_token: ApiToken | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(description="One mutation call: who, what, the input (secrets redacted) and how it ended.")
class AuditEntry(Node):
    actor: str = strawberry.field(description="Who called: role and token name (or JWT subject), e.g. 'admin:ops'.")
    role: str | None = strawberry.field(description="The caller's role; null: no token.")
    operation: str = strawberry.field(description="The mutation, e.g. 'orderCancel'.")
    input: JSON = strawberry.field(description="Its arguments, secrets (by key) shown as '[redacted]'.")
    result: str = strawberry.field(description="OK, USER_ERROR (nothing changed) or ERROR (refused or failed).")
    detail: str | None = strawberry.field(description="The userErrors or the error's code and message.")
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.AuditEntry) -> AuditEntry:
        value: Any = row.input
        return cls(
            id=strawberry.ID(to_global_id("AuditEntry", row.id)),
            actor=row.actor,
            role=row.role,
            operation=row.operation,
            input=value,
            result=row.result,
            detail=row.detail,
            created_at=row.created_at,
        )


@strawberry.input(description="Which audit entries to list.")
class AuditLogFilter:
    actor: str | None = strawberry.field(default=None, description="Entries whose actor contains this text.")
    operation: str | None = strawberry.field(default=None, description="Entries of this mutation, e.g. 'orderCancel'.")
    result: str | None = strawberry.field(default=None, description="OK, USER_ERROR or ERROR.")
    since: datetime | None = strawberry.field(default=None, description="Entries at or after this time.")
