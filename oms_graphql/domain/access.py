"""Roles and API tokens. Only a hash of each token is stored."""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import ApiToken, Customer
from oms_graphql.domain.errors import NotFound, Problems


class Role(enum.StrEnum):
    """Who a token stands for. What each may call is declared on the root fields
    (``schema/permissions.py``), what each may read of a type on its fields
    (``schema/field_rules.py``); README's "Access" section is the table for users."""

    ADMIN = "ADMIN"  # everything, including tokens and channel secrets (write-only)
    OPERATOR = "OPERATOR"  # runs orders, stock and channels day to day
    VIEWER = "VIEWER"  # reads everything operational, changes nothing; personal data masked
    INTEGRATION = "INTEGRATION"  # a sync tool: reads catalog/stock/orders, runs channel syncs and replays
    CUSTOMER = "CUSTOMER"  # sees only their own orders, shipments and profile


STAFF_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.VIEWER})
"""The merchant's people: they may see each other's names on what they did."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_api_token(
    session: AsyncSession,
    *,
    role: str,
    name: str,
    customer_id: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Store a new token; return it with its plaintext (shown once, never stored)."""
    problems = Problems()
    name = name.strip()
    if not name or len(name) > 100:
        problems.add(("name",), "name must be 1 to 100 characters: who or what uses the token.")
    if role.upper() not in Role.__members__:
        problems.add(("role",), f"role must be one of {', '.join(Role.__members__)}.")
    elif role.upper() == Role.CUSTOMER and customer_id is None:
        problems.add(("customerId",), "A CUSTOMER token needs the customer it belongs to.", "REQUIRED")
    elif role.upper() != Role.CUSTOMER and customer_id is not None:
        problems.add(("customerId",), "Only a CUSTOMER token names a customer; leave customerId out.")
    if customer_id is not None and (not 0 < customer_id < 2**63 or await session.get(Customer, customer_id) is None):
        problems.add(("customerId",), f"No customer has id {customer_id}.", "NOT_FOUND")
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= datetime.now(UTC)):
        problems.add(("expiresAt",), "expiresAt must be a time in the future, with its UTC offset.")
    problems.raise_if_any()
    plaintext = "oms_" + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        role=role.upper(),
        token_hash=hash_token(plaintext),
        customer_id=customer_id,
        expires_at=expires_at,
    )
    session.add(token)
    await session.flush()
    return token, plaintext


async def revoke_api_token(session: AsyncSession, token_id: int) -> ApiToken:
    """Revoke a token (for good: a revoked token never works again). Revoking twice changes nothing."""
    token = await session.get(ApiToken, token_id, with_for_update=True)
    if token is None:
        raise NotFound(f"No API token has id {token_id}.", ("id",))
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        await session.flush()
    return token


def list_api_tokens() -> Select[Any]:
    """Every token, newest first (revoked and expired ones included, marked as such)."""
    return select(ApiToken).order_by(ApiToken.id.desc())
