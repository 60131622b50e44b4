"""The audit log: every mutation call, who made it, with what input, and how it ended.

A call that changes something is recorded in the transaction of the change (both are
kept or neither); a call that is refused or fails is recorded on its own, so attempts
are seen too. Inputs are stored with secrets redacted by key, and bounded in size.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_graphql.db.engine import Database
from oms_graphql.db.models import AuditEntry

REDACTED = "[redacted]"
# Keys whose values are credentials wherever they appear (settings of any plugin included):
# the secrets API.md names (appSecret, session, accessToken, clientSecret, refreshToken,
# signatureKey, checkWord, webhookToken, apiKey, webhookSecret, key, salt) and the usual others.
_SECRET_KEY = re.compile(
    r"secret|passw|token|session|signature|salt|checkword|credential|private|api_?key|^key$|authorization",
    re.IGNORECASE,
)
_MAX_TEXT = 1000
_MAX_ITEMS = 200
_MAX_INPUT_BYTES = 16_000
RESULTS = ("OK", "USER_ERROR", "ERROR")
_INSERT_ENTRY = insert(AuditEntry.__table__)  # type: ignore[arg-type]


def is_secret_key(key: str, extra: frozenset[str] = frozenset()) -> bool:
    return key in extra or bool(_SECRET_KEY.search(key))


def _text(value: str) -> str:
    # Lone surrogates and NULs cannot be stored in every database's JSON; the rest is kept.
    cleaned = value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    return cleaned if len(cleaned) <= _MAX_TEXT else cleaned[:_MAX_TEXT] + f"… ({len(cleaned)} characters)"


def redact(value: Any, extra_secret_keys: frozenset[str] = frozenset()) -> Any:
    """``value`` (plain JSON-like data) with every secret-named key's value replaced, strings and lists bounded."""
    if isinstance(value, dict):
        return {
            _text(str(key)): (
                REDACTED
                if is_secret_key(str(key), extra_secret_keys) and item not in (None, "")
                else redact(item, extra_secret_keys)
            )
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        kept = [redact(item, extra_secret_keys) for item in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            kept.append(f"… ({len(value)} items)")
        return kept
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _text(str(value))


def bounded(value: dict[str, Any], *, signed_in: bool) -> dict[str, Any]:
    """What of a (redacted) input is kept: all of a signed-in caller's up to a size; of a caller
    without a token, nothing but that it was sent (so anonymous calls cannot fill the table)."""
    if not signed_in:
        return {"omitted": "the caller sent no token"}
    size = len(json.dumps(value))
    return value if size <= _MAX_INPUT_BYTES else {"omitted": f"{size} bytes of input, over {_MAX_INPUT_BYTES}"}


@dataclass
class PendingAudit:
    """A mutation call under way; ``recorded`` once its entry is written."""

    actor: str
    role: str | None
    operation: str
    input: dict[str, Any]
    recorded: bool = field(default=False)


async def record(session: AsyncSession, call: PendingAudit, result: str, detail: str | None = None) -> None:
    """Write the entry in ``session``'s transaction (the one making the change)."""
    assert result in RESULTS
    # Every mutation writes one: a Core INSERT built once, not the unit of work.
    await session.execute(
        _INSERT_ENTRY,
        {
            "actor": _text(call.actor)[:200],
            "role": call.role,
            "operation": call.operation[:100],
            "input": call.input,
            "result": result,
            "detail": _text(detail)[:4000] if detail else None,
        },
    )
    call.recorded = True


async def record_apart(database: Database, call: PendingAudit, result: str, detail: str | None = None) -> None:
    """Write the entry in a transaction of its own (a refused or failed call, whose changes were rolled back)."""
    async with database.session() as session, session.begin():
        await record(session, call, result, detail)


def audit_log(
    *, actor: str | None = None, operation: str | None = None, result: str | None = None, since: datetime | None = None
) -> Select[Any]:
    """The entries matching the filter, newest first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if actor:
        escaped = actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(AuditEntry.actor.ilike(f"%{escaped}%", escape="\\"))
    if operation:
        query = query.where(AuditEntry.operation == operation)
    if result:
        query = query.where(AuditEntry.result == result.upper())
    if since is not None:
        query = query.where(AuditEntry.created_at >= since)
    return query
