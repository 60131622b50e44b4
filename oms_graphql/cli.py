"""The ``oms`` command line.

Exit codes, the same for every command (scripts and cron jobs rely on them):

- 0: done;
- 1: ``oms stock verify`` found differences (no other outcome exits 1, except Ctrl-C,
  which click reports as "Aborted!");
- 2: cannot run: bad usage, or the database is missing, unreachable or not migrated,
  or the port is taken; one line on stderr says what to do;
- 3: an unexpected error, after its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import traceback
from datetime import UTC, datetime, timedelta
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from oms_graphql.config import Settings, get_settings
from oms_graphql.domain.errors import DomainError
from oms_graphql.logs import configure_logging, show_migration_steps
from oms_graphql.redaction import redact

app = typer.Typer(
    help="oms-graphql: order management over one GraphQL API.",
    epilog="Exit codes: 0 done, 1 differences found (stock verify), 2 cannot run (the message says what to do), "
    "3 unexpected error.",
    no_args_is_help=True,
)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
stock_app = typer.Typer(help="Stock ledger tools.", no_args_is_help=True)
app.add_typer(token_app, name="token")
channel_app = typer.Typer(help="Sales channel tools.", no_args_is_help=True)
app.add_typer(stock_app, name="stock")
app.add_typer(channel_app, name="channel")
secrets_app = typer.Typer(help="Channel and carrier credentials at rest.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")
report_app = typer.Typer(
    help="Reports: rebuild the daily aggregates, print a report (or its CSV).", no_args_is_help=True
)
app.add_typer(report_app, name="report")
console = Console(stderr=True)

EXIT_DIFFERENCES = 1
EXIT_CANNOT_RUN = 2
EXIT_UNEXPECTED = 3


@app.callback()
def _main() -> None:
    configure_logging(get_settings())


def cannot_run(message: str) -> NoReturn:
    """Stop with exit code 2 and ``message`` (what went wrong, what to do) as one line."""
    # soft_wrap: rich would otherwise break a long message at the terminal's width.
    console.print(redact(message), style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=EXIT_CANNOT_RUN)


def require_database(*, migrated: bool = True) -> None:
    """Go on only if the configured database exists, answers and is migrated.

    Every command that uses the database calls this first, so a missing, unreachable
    or unmigrated one stops it with one line instead of a traceback, and no command
    but `oms migrate` creates a SQLite file as a side effect.
    """
    from oms_graphql.db.migrate import DatabaseNotReady, check_database

    try:
        asyncio.run(check_database(get_settings().database_url, migrated=migrated))
    except DatabaseNotReady as error:
        cannot_run(str(error))


@app.command()
def migrate() -> None:
    """Apply database migrations (creates the SQLite file if needed)."""
    from oms_graphql.db.migrate import describe, upgrade

    settings = get_settings()
    require_database(migrated=False)
    show_migration_steps(settings)
    upgrade(settings.database_url)
    console.print(f"[green]Database is up to date[/green] ({describe(settings.database_url)}).")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="Load demo data first (if the database is empty).")] = False,
) -> None:
    """Run the API: GraphQL (and GraphiQL) at /graphql."""
    import uvicorn

    from oms_graphql.app import create_app

    settings = get_settings()
    if settings.production:
        refuse_unsafe_production_settings(settings)
    if settings.jwt_configured and not (settings.jwt_issuer and settings.jwt_audience):
        cannot_run(
            "OMS_JWT_KEY or OMS_JWT_JWKS_FILE is set without OMS_JWT_ISSUER and OMS_JWT_AUDIENCE: set both, "
            "so that tokens your identity provider made for other applications are refused."
        )
    require_database()
    # The port is taken before anything is loaded: `make demo` beside a running
    # `make run` must stop with nothing done, not load demo data and then fail.
    listening = bind_port(host, port, demo=demo)
    if demo:
        from oms_graphql.demo import load_demo_data

        load_demo_data(settings)
    console.print(f"GraphiQL: http://{host}:{port}/graphql")
    tune_garbage_collector()
    # A websocket message (a subscription's document) is held to the same size as an HTTP body.
    config = uvicorn.Config(create_app(settings), log_level="warning", ws_max_size=settings.max_body_bytes)
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listening])


def refuse_unsafe_production_settings(settings: Settings) -> None:
    """OMS_PRODUCTION=1: stop before serving anything a laptop default would leave open."""
    if settings.anonymous_role:
        cannot_run(
            f"OMS_PRODUCTION=1 with OMS_ANONYMOUS_ROLE={settings.anonymous_role}: callers without a token would act "
            "as that role. Unset OMS_ANONYMOUS_ROLE and give each client a token."
        )
    if settings.secret_key == Settings.secret_key:
        cannot_run("OMS_PRODUCTION=1 needs OMS_SECRET_KEY: the development default encrypts nothing worth keeping.")


def bind_port(host: str, port: int, *, demo: bool = False) -> socket.socket:
    """A socket bound to ``host:port`` for uvicorn, or stop (exit 2) if it cannot be had."""
    listening: socket.socket | None = None
    try:
        # As uvicorn binds: IPv6 for a host with a colon, and a port left in TIME_WAIT
        # by a server just stopped counts as free.
        listening = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
    except OSError as error:
        if listening is not None:
            listening.close()
        nothing_done = "Nothing was loaded. " if demo else ""
        if error.errno != errno.EADDRINUSE:
            cannot_run(
                f"Cannot listen on {host}:{port}: {error.strerror or error}. {nothing_done}Check --host and --port."
            )
        demo_hint = "; or load the demo data into the database it serves with `oms demo`" if demo else ""
        cannot_run(
            f"Port {port} on {host} is already in use (is `make run` or another `oms serve` running?). "
            f"{nothing_done}Stop that server, or pick another port (--port, or PORT=… for make){demo_hint}."
        )
    return listening


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    threads: Annotated[int, typer.Option(help="Threads per process.")] = 4,
) -> None:
    """Run background-job workers on the configured broker (OMS_BROKER_URL)."""
    settings = get_settings()
    if settings.broker_url == "memory":
        cannot_run(
            "OMS_BROKER_URL is 'memory': jobs then run inside `oms serve`. "
            "Set OMS_BROKER_URL=redis://… or amqp://… to run separate workers."
        )
    require_database()
    if processes > 1:
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "oms_graphql.cli",
                    "worker",
                    "--processes",
                    "1",
                    "--threads",
                    str(threads),
                ]
            )
            for _ in range(processes)
        ]
        try:
            for child in children:
                child.wait()
        except KeyboardInterrupt:
            for child in children:
                child.send_signal(signal.SIGINT)
        return
    run_worker(threads)


def tune_garbage_collector() -> None:
    """Fewer, later collections for a long-running server.

    A page of 100 orders allocates tens of thousands of short-lived objects; with
    the default threshold the collector runs mid-request and the slowest requests
    pay for it (p99 of a 100-order page: about 100 ms → 40 ms here). Objects alive
    at start-up are frozen so collections never walk them.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run_worker(threads: int) -> None:
    import dramatiq

    from oms_graphql.events.pubsub import Publisher
    from oms_graphql.events.relay import Relay
    from oms_graphql.jobs import send_job, setup

    settings = get_settings()
    broker = setup(settings.broker_url)
    relay = Relay(settings.database_url, Publisher(settings.pubsub_url), send_job)
    threading.Thread(target=lambda: asyncio.run(relay.run()), name="outbox-relay", daemon=True).start()
    tune_garbage_collector()
    worker = dramatiq.Worker(broker, worker_threads=threads)
    worker.start()
    console.print(f"Worker running with {threads} threads (pid {os.getpid()}). Ctrl-C stops it.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    worker.stop(timeout=10_000)


@app.command()
def demo() -> None:
    """Load the demo data set (products, locations, channels, a few hundred orders)."""
    from oms_graphql.demo import load_demo_data

    require_database()
    load_demo_data(get_settings())


@app.command()
def reset(
    yes: Annotated[bool, typer.Option("--yes", help="Yes, delete everything in the database.")] = False,
) -> None:
    """Empty the database: every order, product, location, stock movement, customer and token goes.

    It stays migrated, with what the first migration seeds (the manual channel), ready for `oms serve`.
    """
    from oms_graphql.db.migrate import describe
    from oms_graphql.db.migrate import reset as reset_database

    settings = get_settings()
    require_database()
    where = describe(settings.database_url)
    if not yes:
        cannot_run(
            f"`oms reset` deletes every order, product, location, stock movement, customer and API token "
            f"in {where}. Nothing was changed; run `oms reset --yes` to do it."
        )
    show_migration_steps(settings)
    reset_database(settings.database_url)
    console.print(
        f"[green]Emptied {where}[/green]: it is migrated and holds only the manual channel. "
        "Restart any `oms serve` or `oms worker` that was running on it: jobs it had queued name rows that are gone.",
        soft_wrap=True,
    )


def parse_expiry(value: str | None) -> datetime | None:
    """``--expires``: an ISO time (UTC unless it says otherwise), or how long from now: ``90d``, ``12h``."""
    if value is None:
        return None
    if match := _AGO.match(value.strip()):
        return datetime.now(UTC) + timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--expires {value!r} is neither an ISO time (2027-01-01T00:00) nor a span (90d, 12h)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _token_id(value: str) -> int | None:
    """A token's number as `oms token list` shows it, or its ApiToken global id."""
    from oms_graphql.schema.ids import from_global_id

    if value.isdigit():
        return int(value)
    decoded = from_global_id(value)
    return decoded[1] if decoded and decoded[0] == "ApiToken" else None


def _customer_id(value: str) -> int | None:
    from oms_graphql.schema.ids import from_global_id

    if value.isdigit():
        return int(value)
    decoded = from_global_id(value)
    return decoded[1] if decoded and decoded[0] == "Customer" else None


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="ADMIN, OPERATOR, VIEWER, INTEGRATION or CUSTOMER.")],
    name: Annotated[str, typer.Option(help="Who or what uses the token.")],
    customer: Annotated[
        str | None, typer.Option(help="A CUSTOMER token's customer: its id (number or global id).")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="When it stops working: an ISO time, or a span from now (90d, 12h).")
    ] = None,
) -> None:
    """Create an API token and print it (the last word of the output). Only its hash is stored."""
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.access import create_api_token

    customer_id = None
    if customer is not None and (customer_id := _customer_id(customer)) is None:
        cannot_run(f"--customer {customer!r} is not a customer id (a number, or a Customer's global id).")
    try:
        expires_at = parse_expiry(expires)
    except ValueError as error:
        cannot_run(str(error))
    require_database()

    async def store() -> str:
        database = Database(get_settings().database_url)
        try:
            async with database.session() as session, session.begin():
                _, plaintext = await create_api_token(
                    session, role=role, name=name, customer_id=customer_id, expires_at=expires_at
                )
                return plaintext
        finally:
            await database.dispose()

    try:
        token = asyncio.run(store())
    except DomainError as error:
        options = {"customerId": "--customer", "expiresAt": "--expires", "role": "--role", "name": "--name"}
        cannot_run(
            " ".join(
                f"{options.get(problem.field[-1], problem.field[-1]) if problem.field else 'token'}: {problem.message}"
                for problem in error.problems
            )
        )
    until = f", valid until {expires_at.isoformat(timespec='seconds')}" if expires_at else ""
    print(f"Created {role.upper()} token for {name}{until} (shown this once): {token}")


@token_app.command("list")
def token_list() -> None:
    """List API tokens (never the tokens themselves): role, customer, expiry, last use, revocation."""
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.access import list_api_tokens

    require_database()

    async def load() -> list:
        database = Database(get_settings().database_url)
        try:
            async with database.session() as session:
                return list((await session.scalars(list_api_tokens())).all())
        finally:
            await database.dispose()

    def when(moment: datetime | None) -> str:
        return moment.isoformat(timespec="seconds") if moment else "-"

    now = datetime.now(UTC)
    table = Table("id", "name", "role", "customer", "created", "expires", "last used", "state")
    for token in asyncio.run(load()):
        state = (
            "revoked" if token.revoked_at else "expired" if token.expires_at and token.expires_at <= now else "active"
        )
        table.add_row(
            str(token.id),
            token.name,
            token.role,
            str(token.customer_id or "-"),
            when(token.created_at),
            when(token.expires_at),
            when(token.last_used_at),
            state,
        )
    Console(width=200).print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id, as `oms token list` shows it.")],
) -> None:
    """Revoke an API token: every request presenting it is refused (within 30 seconds on running servers)."""
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.access import revoke_api_token

    key = _token_id(token_id)
    if key is None:
        cannot_run(f"{token_id!r} is not a token id; `oms token list` shows them.")
    require_database()

    async def revoke() -> str:
        database = Database(get_settings().database_url)
        try:
            async with database.session() as session, session.begin():
                return (await revoke_api_token(session, key)).name
        finally:
            await database.dispose()

    try:
        name = asyncio.run(revoke())
    except DomainError as error:
        cannot_run(f"{error.message} `oms token list` shows the tokens.")
    print(f"Revoked token {key} ({name}).")


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every channel's and carrier's secrets with OMS_SECRET_KEY (old keys in OMS_PREVIOUS_SECRET_KEYS)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from oms_graphql.db.engine import Database
    from oms_graphql.domain.secret_rotation import RotationReport, count_accounts_with_secrets, rotate_secrets

    settings = get_settings()
    if settings.secret_key == Settings.secret_key:
        cannot_run(
            "OMS_SECRET_KEY is the development default: set the new key in OMS_SECRET_KEY and the old one in "
            "OMS_PREVIOUS_SECRET_KEYS, then run `oms secrets rotate` again. Nothing was changed."
        )
    require_database()

    async def rotate() -> tuple[int, RotationReport]:
        database = Database(settings.database_url)
        try:
            total = await count_accounts_with_secrets(database)
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[account]}"),
                console=console,
            ) as bar:
                task = bar.add_task("Re-encrypting secrets", total=total, account="")
                report = await rotate_secrets(database, lambda label: bar.update(task, advance=1, account=label))
            return total, report
        finally:
            await database.dispose()

    total, report = asyncio.run(rotate())
    print(f"Re-encrypted the secrets of {report.reencrypted} of {total} channels and carriers.")
    if unreadable := report.unreadable:
        cannot_run(
            f"No configured key decrypts the secrets of {', '.join(unreadable)}: they were left as they were. Add "
            "the key they were stored with to OMS_PREVIOUS_SECRET_KEYS and run again, or set them anew with "
            "channelUpdate / carrierUpdate."
        )


@report_app.command("rebuild")
def report_rebuild() -> None:
    """Recompute the daily report tables from every order and the ledger (after changing OMS_REPORT_TIMEZONE)."""
    from zoneinfo import ZoneInfo

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from oms_graphql.db.engine import Database
    from oms_graphql.domain.reports.rebuild import count_orders, rebuild_reports

    require_database()
    settings = get_settings()

    async def rebuild() -> int:
        database = Database(settings.database_url)
        try:
            total = await count_orders(database)
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("Rebuilding report tables", total=total)
                return await rebuild_reports(
                    database, ZoneInfo(settings.report_timezone), lambda done: bar.update(task, advance=done)
                )
        finally:
            await database.dispose()

    done = asyncio.run(rebuild())
    print(f"Rebuilt the report tables from {done} orders (time zone {settings.report_timezone}).")


REPORT_NAMES = ("salesTrend", "topProducts", "fulfillmentKpis", "inventoryKpis", "demandForecast", "customerSegments")


def _report_command(name: str) -> None:
    def command(
        start: Annotated[str | None, typer.Option("--from", help="ISO-8601 time (default: 30 days ago).")] = None,
        end: Annotated[str | None, typer.Option("--to", help="ISO-8601 time (default: now).")] = None,
        group_by: Annotated[
            str | None, typer.Option("--group-by", help="SKU, CATEGORY, CHANNEL, REGION or LOCATION.")
        ] = None,
        interval: Annotated[str | None, typer.Option(help="DAY, WEEK or MONTH (salesTrend).")] = None,
        sku: Annotated[list[str] | None, typer.Option(help="Only these SKUs (repeat the option).")] = None,
        channel: Annotated[list[str] | None, typer.Option(help="Only these channel codes.")] = None,
        location: Annotated[list[str] | None, typer.Option(help="Only these location codes.")] = None,
        by: Annotated[str | None, typer.Option(help="UNITS or REVENUE (topProducts).")] = None,
        limit: Annotated[int | None, typer.Option(help="How many products in each list (topProducts).")] = None,
        as_csv: Annotated[
            bool, typer.Option("--csv", help="CSV on stdout (the columns of GET /reports/NAME.csv).")
        ] = False,
    ) -> None:
        options = {"groupBy": group_by, "interval": interval, "by": by, "limit": str(limit) if limit else None}
        report_print(name, start, end, options, sku, channel, location, as_csv)

    command.__doc__ = f"Print reports.{name} (a table, or CSV with --csv), with the arguments of the GraphQL field."
    report_app.command(name)(command)


def report_print(
    name: str,
    start: str | None,
    end: str | None,
    options: dict[str, str | None],
    sku: list[str] | None,
    channel: list[str] | None,
    location: list[str] | None,
    as_csv: bool,
) -> None:
    """Print a report (a table, or CSV with --csv), with the arguments of the GraphQL field."""
    import csv as csv_module
    import io

    from oms_graphql.db.engine import Database
    from oms_graphql.domain.access import Role
    from oms_graphql.report_csv import BadReportRequest, run_report
    from oms_graphql.resolvers import build_schema
    from oms_graphql.schema.context import Caller, Context

    require_database()
    settings = get_settings()
    now = datetime.now(UTC)
    params: dict[str, list[str]] = {
        "from": [start or (now - timedelta(days=30)).isoformat()],
        "to": [end or now.isoformat()],
    }
    for key, value in options.items():
        if value:
            params[key] = [value.upper()]
    for key, values in (("skus", sku), ("channelCodes", channel), ("locationCodes", location)):
        if values:
            params[key] = list(values)

    async def run() -> str:
        database = Database(settings.database_url)
        try:
            context = Context(database=database, settings=settings)
            context._caller = Caller(role=Role.ADMIN, name="cli")
            return await run_report(build_schema(), name, params, context)
        finally:
            await database.dispose()

    try:
        text = asyncio.run(run())
    except BadReportRequest as bad:
        cannot_run(bad.message)
    if as_csv:
        sys.stdout.write(text)
        return
    rows = list(csv_module.reader(io.StringIO(text)))
    table = Table(*rows[0])
    for row in rows[1:]:
        table.add_row(*row)
    Console().print(table)


for _name in REPORT_NAMES:
    _report_command(_name)


@report_app.command("forecasts")
def report_forecasts(
    sku: Annotated[list[str] | None, typer.Option(help="Only these SKUs (default: every stocked SKU).")] = None,
) -> None:
    """Store the forecast reorder suggestion of every stocked SKU at each location (what low-stock
    alerts and transferSuggest read; run it nightly, e.g. from cron)."""
    from oms_graphql.jobs.reports import store_forecasts

    require_database()
    stored = store_forecasts(list(sku or ()) or None)
    print(f"Stored {stored} reorder forecasts (SKU × location).")


@stock_app.command("verify")
def stock_verify() -> None:
    """Recompute on hand, reserved and in transit of every level from the ledger; exit 1 on any difference
    (2: cannot check)."""
    from oms_graphql.db.engine import Database
    from oms_graphql.domain.inventory import verify_ledger

    require_database()

    async def check() -> list:
        database = Database(get_settings().database_url)
        try:
            async with database.session() as session:
                return await verify_ledger(session)
        finally:
            await database.dispose()

    differences = asyncio.run(check())
    if not differences:
        console.print("[green]Every stock level matches the ledger.[/green]")
        return
    table = Table("SKU", "location", "figure", "level", "ledger", "why")
    for diff in differences:
        table.add_row(diff.sku, diff.location_code, diff.figure, str(diff.level), str(diff.ledger), diff.why)
    console.print(table)
    console.print(f"[red]{len(differences)} figure(s) differ from the ledger.[/red]")
    raise typer.Exit(code=EXIT_DIFFERENCES)


@channel_app.command("reconcile")
def channel_reconcile(
    code: Annotated[str, typer.Argument(help="The channel's code.")],
    since: Annotated[
        str | None,
        typer.Option(help="An ISO time, or how long ago: 24h, 90m, 2d (default: OMS_CHANNEL_RECONCILE_HOURS)."),
    ] = None,
) -> None:
    """List the channel's orders changed since --since again and store every one missing (补单)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from oms_graphql.db.engine import Database
    from oms_graphql.db.models import Channel
    from oms_graphql.jobs.broker import setup
    from oms_graphql.plugins.contract import PluginError

    settings = get_settings()
    try:
        start = parse_since(since)
    except ValueError as error:
        cannot_run(str(error))
    require_database()

    async def channel_id() -> int | None:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                channel = await session.scalar(select(Channel).where(Channel.code == code))
                return channel.id if channel is not None else None
        finally:
            await database.dispose()

    found = asyncio.run(channel_id())
    if found is None:
        cannot_run(f"No channel has code {code!r}; the `channels` query lists them.")
    setup(settings.broker_url)
    from oms_graphql.jobs.channel_pulls import reconcile

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[listed]} listed"),
        console=console,
    ) as bar:
        task = bar.add_task(f"Reconciling {code}", total=None, listed=0)

        def progress(event: str, amount: int) -> None:
            if event == "windows":
                bar.update(task, total=amount)
            elif event == "window":
                bar.advance(task, amount)
            else:
                bar.update(task, listed=bar.tasks[task].fields["listed"] + amount)

        try:
            summary = reconcile(found, start, progress)
        except (PluginError, DomainError) as error:
            console.print(
                f"[red]Reconciling {code} failed: {escape(redact(str(error)))}[/red] "
                "Check the channel's settings and try again."
            )
            raise typer.Exit(code=1) from None
    print(
        f"Reconciled {code} from {summary['since']} to {summary['until']}: {summary['listed']} listed, "
        f"{summary['alreadyStored']} already stored, {summary['newlyStored']} newly stored"
        + (f" ({summary['failed']} could not be read: see inboundMessages)" if summary["failed"] else "")
    )


_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str | None) -> datetime | None:
    """``--since``: an ISO time (UTC unless it says otherwise), or a duration ago such as ``24h``."""
    if value is None:
        return None
    if match := _AGO.match(value.strip()):
        return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--since {value!r} is neither an ISO time (2026-12-01T08:00) nor a duration (24h, 90m, 2d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("plugins")
def plugins_command() -> None:
    """List installed plugins (needs no database)."""
    from oms_graphql.plugins.host import installed_plugins

    table = Table("name", "version", "kinds", "hooks")
    for plugin in installed_plugins():
        table.add_row(plugin.name, plugin.version or "-", ", ".join(plugin.kinds), ", ".join(plugin.hooks))
    Console().print(table)


def main() -> None:
    try:
        app()
    except Exception:
        # Python would exit 1, which `oms stock verify` keeps for "differences found".
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        console.print("Unexpected error (the traceback above says where).", style="red", markup=False)
        sys.exit(EXIT_UNEXPECTED)


if __name__ == "__main__":
    main()
