"""The per-request context: database, caller, DataLoaders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oms_graphql.config import Settings, get_settings
from oms_graphql.db.engine import Database
from oms_graphql.domain.access import Role
from oms_graphql.domain.identities import authenticate
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


async def caller_for_token(database: Database, token: str | None, settings: Settings | None = None) -> Caller:
    """The caller a token stands for. No token at all is the anonymous caller (or
    ``OMS_ANONYMOUS_ROLE``'s); a token that is sent but does not hold (unknown, revoked,
    expired, a JWT that fails verification) raises ``AuthenticationFailed``."""
    settings = settings or get_settings()
    if not token:
        anonymous_role = settings.anonymous_role
        return Caller(role=Role(anonymous_role.upper()), name="anonymous") if anonymous_role else ANONYMOUS
    identity = await authenticate(database, token, settings)
    return Caller(role=identity.role, name=identity.name, customer_id=identity.customer_id)


def bearer(value: object) -> str | None:
    """The token in an Authorization value, with or without its "Bearer " scheme."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    scheme, _, token = text.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else text


# Keys of a websocket's connection_init payload that may carry the token, compared in
# lower case: front-end libraries and examples send {Authorization}, {authorization},
# {authToken} or {token}, and some wrap a header object: {headers: {Authorization}}.
_TOKEN_KEYS = ("authorization", "authtoken", "token")


def _lower_keys(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in mapping.items()}


def token_in_connection_params(params: Mapping[Any, Any]) -> str | None:
    """The token in a websocket's connection_init payload, wherever a common client puts it."""
    given = _lower_keys(params)
    headers = given.get("headers")
    candidates = [given.get(key) for key in _TOKEN_KEYS]
    if isinstance(headers, Mapping):
        candidates.append(_lower_keys(headers).get("authorization"))
    for value in candidates:
        # An empty value ("Bearer " or "") is a front-end with no token yet: anonymous.
        if token := bearer(value):
            return token
    return None


def presented_token(request: Any, connection_params: Mapping[Any, Any] | None) -> str | None:
    """The token a caller sent: the one rule for HTTP requests and websockets alike.

    A websocket sends it in connection_init (browsers cannot set headers on one); a
    non-browser client may send the Authorization header with the upgrade request
    instead, which is what an HTTP request does.
    """
    if connection_params and (token := token_in_connection_params(connection_params)):
        return token
    headers = getattr(request, "headers", None)
    return bearer(headers.get("authorization")) if headers is not None else None


@dataclass
class Context:
    database: Database
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    settings: Settings | None = None
    loaders: Loaders = field(init=False)
    # The mutation being run, for the audit log (see resolvers/audit.py); mutations run one at a time.
    audit: Any = None
    _caller: Caller | None = None

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.database)

    def token(self) -> str | None:
        """The token this request or websocket presented (see ``presented_token``)."""
        return presented_token(self.request, self.connection_params)

    def caller_if_known(self) -> Caller | None:
        """The caller once ``caller()`` has found it (a root field's permission does), else None:
        field permissions read it without awaiting, so plain fields stay synchronous."""
        return self._caller

    @property
    def known_caller(self) -> Caller | None:
        """The caller, if already established for this request (None before, or when its token failed)."""
        return self._caller

    async def caller(self) -> Caller:
        """Who is calling; raises ``AuthenticationFailed`` for a token that does not hold
        (the request is then answered UNAUTHENTICATED before anything runs)."""
        if self._caller is None:
            self._caller = await caller_for_token(self.database, self.token(), self.settings)
        return self._caller
