"""Alembic environment: runs migrations over the async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from oms_graphql.db.engine import make_engine
from oms_graphql.db.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.dialect.name == "sqlite":
        broken = connection.execute(text("PRAGMA foreign_key_check")).all()
        if broken:
            tables = sorted({row[0] for row in broken})
            raise RuntimeError(f"migrations left rows whose foreign keys point nowhere, in: {', '.join(tables)}")


async def _run_async() -> None:
    # SQLite alters a table in batch mode by copying it, dropping the old one and renaming
    # the copy; with foreign keys enforced, dropping a table that other rows reference
    # fails, so migrations run without them and are checked afterwards (Alembic's advice:
    # https://alembic.sqlalchemy.org/en/latest/batch.html#dealing-with-referencing-foreign-keys).
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "", sqlite_foreign_keys=False)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `oms migrate` against a database")
asyncio.run(_run_async())
