"""The per-request context: database, caller, DataLoaders."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from oms_graphql.config import get_settings
from oms_graphql.db.engine import Database
from oms_graphql.db.models import ApiToken
from oms_graphql.domain.access import Role, hash_token
from oms_graphql.schema.loaders import Loaders


@dataclass(frozen=True)
class Caller:
    role: Role | None
    name: str
    customer_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.role.value.lower() if self.role else 'anonymous'}:{self.name}"


ANONYMOUS = Caller(role=None, name="anonymous")
_TOKEN_CACHE: dict[str, tuple[float, Caller]] = {}
_TOKEN_CACHE_SECONDS = 30.0


async def caller_for_token(database: Database, token: str | None) -> Caller:
    if not token:
        anonymous_role = get_settings().anonymous_role
        return Caller(role=Role(anonymous_role.upper()), name="anonymous") if anonymous_role else ANONYMOUS
    digest = hash_token(token)
    cached = _TOKEN_CACHE.get(digest)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    async with database.session() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None)))
    caller = Caller(role=Role(row.role), name=row.name, customer_id=row.customer_id) if row else ANONYMOUS
    _TOKEN_CACHE[digest] = (time.monotonic() + _TOKEN_CACHE_SECONDS, caller)
    return caller


def bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else value.strip()


@dataclass
class Context:
    database: Database
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(init=False)
    _caller: Caller | None = None

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.database)

    async def caller(self) -> Caller:
        """Who is calling: from the Authorization header, or websocket connection_init."""
        if self._caller is None:
            token = None
            if self.connection_params:
                token = bearer(self.connection_params.get("authorization") or self.connection_params.get("token"))
            elif self.request is not None:
                token = bearer(self.request.headers.get("authorization"))
            self._caller = await caller_for_token(self.database, token)
        return self._caller
