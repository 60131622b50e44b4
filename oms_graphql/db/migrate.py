"""Apply and check Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from oms_graphql.db.engine import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# How long a check waits for the database server before it says it cannot reach it
# (asyncpg would wait 60 s for a host that drops packets).
CONNECT_TIMEOUT_SECONDS = 10


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (runs its own event loop)."""
    command.upgrade(alembic_config(url), revision)


def reset(url: str) -> None:
    """Empty the database at ``url``: every migration undone, then applied again.

    Going through the migrations (rather than deleting rows) leaves exactly what a
    fresh `oms migrate` leaves, seeds included (the manual channel), on SQLite and
    PostgreSQL alike; it is also why every migration must have a working downgrade.
    """
    config = alembic_config(url)
    command.downgrade(config, "base")
    command.upgrade(config, "head")


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


class DatabaseNotReady(RuntimeError):
    """The database cannot be used as it is; the message says what to do, in one line."""


class DatabaseMissing(DatabaseNotReady):
    pass


class DatabaseUnreachable(DatabaseNotReady):
    pass


class SchemaOutdated(DatabaseNotReady):
    pass


async def check_up_to_date(engine: AsyncEngine) -> None:
    """Refuse to serve a database whose schema is not at the code's head."""
    current, head = await current_revision(engine), head_revision()
    if current == head:
        return
    if current is None:
        state = "not migrated"
    elif ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(current) is None:
        # Written by another (newer) version of the code: `oms migrate` cannot help.
        raise SchemaOutdated(
            f"The database is at revision {current}, which this version of oms-graphql does not know "
            f"(it needs {head}). Run the version that migrated it, or point OMS_DATABASE_URL elsewhere."
        )
    else:
        state = f"at revision {current}, the code needs {head}"
    raise SchemaOutdated(f"The database is {state}. Run `oms migrate` and start again.")


def describe(url: str) -> str:
    """The database named by ``url``, for messages: an absolute file, or the URL without its password."""
    path = sqlite_file(url)
    return str(path) if path else make_url(url).render_as_string(hide_password=True)


def sqlite_file(url: str) -> Path | None:
    """The absolute path of a SQLite database file (None: not SQLite, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.query.get("uri") == "true" or parsed.database.startswith("file:"):
        return None  # an SQLite URI: its own rules for paths and modes
    return Path(parsed.database).absolute()


async def check_database(url: str, *, migrated: bool = True) -> None:
    """Make sure the database at ``url`` exists, answers and (``migrated``) is at the code's head.

    Raises ``DatabaseNotReady`` whose message says what to do. It never creates a
    database: SQLite would otherwise leave an empty file wherever the command ran.
    ``migrated=False`` (for `oms migrate`) only checks that the server answers.
    """
    path = sqlite_file(url)
    if migrated and path is not None and not path.exists():
        relative = ""
        if not Path(make_url(url).database or "").is_absolute():
            relative = " (a relative OMS_DATABASE_URL, like the default ./oms.db, is looked up in the current folder)"
        raise DatabaseMissing(
            f"No database at {path}, so it is not migrated{relative}. Run `oms` from your project folder, "
            "set OMS_DATABASE_URL to your database, or run `oms migrate` to create a new one here."
        )
    connect_args = {"timeout": CONNECT_TIMEOUT_SECONDS} if make_url(url).drivername.endswith("asyncpg") else {}
    engine = make_engine(url, connect_args=connect_args)
    try:
        if migrated:
            await check_up_to_date(engine)
        else:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except (OSError, exc.DBAPIError) as error:
        reason = error.orig if isinstance(error, exc.DBAPIError) and error.orig is not None else error
        first_line = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
        what_to_check = (
            "its folder and permissions"
            if make_url(url).get_backend_name() == "sqlite"
            else "that its server is running and accepts you"
        )
        raise DatabaseUnreachable(
            f"Cannot connect to the database {describe(url)}: {first_line}. "
            f"Check {what_to_check}, and that OMS_DATABASE_URL is right."
        ) from None
    finally:
        await engine.dispose()
