"""Apply and check Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (runs its own event loop)."""
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


class SchemaOutdated(RuntimeError):
    pass


async def check_up_to_date(engine: AsyncEngine) -> None:
    """Refuse to serve a database whose schema is not at the code's head."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        state = "not migrated" if current is None else f"at revision {current}, the code needs {head}"
        raise SchemaOutdated(f"The database is {state}. Run `oms migrate` and start again.")
