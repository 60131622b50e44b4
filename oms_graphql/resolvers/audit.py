"""The audit log: one field extension records every mutation; ``auditLog`` lists the entries (ADMIN).

The extension is put on every root mutation field when the schema is built
(:func:`audit_every_mutation`), so a new mutation is audited without doing anything.
A mutation run through ``run_mutation`` has its entry written in its own transaction;
the extension writes the entry of a call that was refused, failed or ran otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import FieldExtension
from strawberry.types import Info
from strawberry.types.unset import UnsetType
from strawberry.utils.str_converters import to_camel_case

from oms_graphql.domain import audit
from oms_graphql.domain.errors import DomainError
from oms_graphql.domain.identities import AuthenticationFailed
from oms_graphql.plugins.host import carrier_kinds, channel_kinds
from oms_graphql.resolvers.common import context
from oms_graphql.schema.identities import AuditEntry, AuditLogFilter
from oms_graphql.schema.permissions import ADMIN
from oms_graphql.schema.relay import Connection, paginate


def plain(value: Any) -> Any:
    """Resolver arguments (strawberry inputs, enums, decimals, times) as JSON data, keys as the schema names them."""
    if value is None or isinstance(value, UnsetType):
        return None
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    definition = getattr(value, "__strawberry_definition__", None)
    if definition is not None:
        return {
            (field.graphql_name or to_camel_case(field.python_name)): plain(getattr(value, field.python_name, None))
            for field in definition.fields
            if not isinstance(getattr(value, field.python_name, None), UnsetType)
        }
    return str(value)


def _plugin_secret_keys() -> frozenset[str]:
    """Secret settings every installed channel and carrier plugin declares, redacted by name too."""
    specs = [spec for kind in channel_kinds().values() for spec in kind.settings]
    specs += [spec for kind in carrier_kinds().values() for spec in kind.settings]
    return frozenset(spec.key for spec in specs if spec.secret)


def _user_error_detail(errors: list[Any]) -> str:
    return "; ".join(
        f"{error.code} {'.'.join(error.field or ())}: {error.message}".replace("  ", " ") for error in errors
    )


def _error_detail(error: Exception) -> str:
    if isinstance(error, GraphQLError):
        code = (error.extensions or {}).get("code") or "FORBIDDEN"
        return f"{code}: {error.message}"
    if isinstance(error, AuthenticationFailed):
        return f"UNAUTHENTICATED: {error.message}"
    if isinstance(error, DomainError):
        return f"{error.code}: {error.message}"
    # An unexpected failure: its text may reveal internals (the server log has it).
    return f"INTERNAL_SERVER_ERROR: {type(error).__name__}"


class AuditMutation(FieldExtension):
    """Records the call of the root mutation field it is put on."""

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any) -> Any:
        ctx = context(info)
        caller = await ctx.caller()
        call = audit.PendingAudit(
            actor=caller.label,
            role=caller.role.value if caller.role else None,
            operation=info.field_name,
            input=audit.bounded(
                audit.redact({to_camel_case(key): plain(value) for key, value in kwargs.items()}, _secret_keys()),
                signed_in=caller.role is not None,
            ),
        )
        ctx.audit = call
        try:
            result = await next_(source, info, **kwargs)
        except Exception as error:
            if not call.recorded:
                await audit.record_apart(ctx.database, call, "ERROR", _error_detail(error))
            raise
        finally:
            ctx.audit = None
        if not call.recorded:
            errors = list(getattr(result, "user_errors", None) or ())
            await audit.record_apart(
                ctx.database, call, "USER_ERROR" if errors else "OK", _user_error_detail(errors) if errors else None
            )
        return result


_SECRET_KEYS: list[frozenset[str]] = []


def _secret_keys() -> frozenset[str]:
    if not _SECRET_KEYS:
        _SECRET_KEYS.append(_plugin_secret_keys())
    return _SECRET_KEYS[0]


def audit_every_mutation(mutation_type: type) -> None:
    """Put the audit extension on every root mutation field (once, however often the schema is built)."""
    for field in mutation_type.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        if not any(isinstance(extension, AuditMutation) for extension in field.extensions):
            field.extensions.append(AuditMutation())


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="Every mutation call, newest first: who, what, input, result.", permission_classes=ADMIN
    )
    async def audit_log(
        self, info: Info, first: int | None = None, after: str | None = None, filter: AuditLogFilter | None = None
    ) -> Connection[AuditEntry]:
        given = filter or AuditLogFilter()
        if given.since is not None and given.since.tzinfo is None:
            raise DomainError("filter.since needs its UTC offset, e.g. 2026-12-01T08:00:00Z.", ("filter", "since"))
        if given.result is not None and given.result.upper() not in audit.RESULTS:
            raise DomainError(f"filter.result must be one of {', '.join(audit.RESULTS)}.", ("filter", "result"))
        query = audit.audit_log(actor=given.actor, operation=given.operation, result=given.result, since=given.since)
        return await paginate(context(info).database, query, AuditEntry.from_row, first=first, after=after)
