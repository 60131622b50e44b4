"""``INSERT … ON CONFLICT (…) DO NOTHING`` in the dialect at hand (PostgreSQL or SQLite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_or_skip(session: AsyncSession, model: Any, *unique: str) -> Any:
    """An insert of ``model`` rows that skips each row whose ``unique`` key exists already
    (committed, or inserted by a concurrent transaction that then commits): with RETURNING,
    only the rows actually inserted come back. Without ``unique``, a row that conflicts on any
    unique key is skipped."""
    dialect = session.get_bind().dialect.name
    statement = postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)
    return statement.on_conflict_do_nothing(index_elements=list(unique) or None)
