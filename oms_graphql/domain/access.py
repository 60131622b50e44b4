"""Roles and API tokens. Only a hash of each token is stored."""

from __future__ import annotations

import enum
import hashlib
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.models import ApiToken
from oms_graphql.domain.errors import FieldProblem, InvalidInput


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
    session: AsyncSession, *, role: str, name: str, customer_id: int | None = None
) -> tuple[ApiToken, str]:
    """Store a new token; return it with its plaintext (shown once, never stored)."""
    if role.upper() not in Role.__members__:
        raise InvalidInput([FieldProblem(("role",), f"role must be one of {', '.join(Role.__members__)}.")])
    if role.upper() == Role.CUSTOMER and customer_id is None:
        raise InvalidInput([FieldProblem(("customerId",), "A CUSTOMER token needs the customer it belongs to.")])
    plaintext = "oms_" + secrets.token_urlsafe(32)
    token = ApiToken(name=name, role=role.upper(), token_hash=hash_token(plaintext), customer_id=customer_id)
    session.add(token)
    await session.flush()
    return token, plaintext
