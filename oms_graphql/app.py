"""The Starlette application: /graphql (HTTP + websocket), /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import structlog
from cross_web import HTTPException
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from oms_graphql.config import Settings, get_settings
from oms_graphql.dashboard import dashboard_routes
from oms_graphql.db.engine import Database
from oms_graphql.db.migrate import check_up_to_date
from oms_graphql.domain.identities import AuthenticationFailed
from oms_graphql.domain.plugin_settings import remember_configured_secrets
from oms_graphql.events.pubsub import Publisher, forward_from_redis
from oms_graphql.events.relay import Relay
from oms_graphql.http_limits import BodyLimit, JSONTooDeep, load_json_limited
from oms_graphql.jobs import current_broker, send_job, setup
from oms_graphql.labels import label_route
from oms_graphql.metrics import OperationMetrics, metrics_endpoint
from oms_graphql.report_csv import csv_route
from oms_graphql.resolvers import build_schema
from oms_graphql.schema.context import Context
from oms_graphql.webhooks import routes as webhook_routes

log = structlog.get_logger(__name__)

GRAPHQL_RESPONSE = "application/graphql-response+json"
_HTTP_ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}
JSON = "application/json"


def _accepted_media_type(accept: str | None) -> str | None:
    """The response media type for an Accept header (GraphQL over HTTP, "Accept")."""
    if not accept:
        return JSON  # legacy clients send none: keep them working
    ranked = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                with contextlib.suppress(ValueError):
                    quality = float(value)
        ranked.append((quality, media.strip().lower()))
    for _quality, media in sorted(ranked, key=lambda item: -item[0]):
        if media == GRAPHQL_RESPONSE:
            return GRAPHQL_RESPONSE
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return None


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view plus the GraphQL-over-HTTP media type and status codes,
    and the refusal of websockets that present a bad token."""

    def __init__(
        self, database: Database, settings: Settings | None = None, max_json_depth: int = 64, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.settings = settings
        self.max_json_depth = max_json_depth

    def decode_json(self, data: str | bytes) -> object:
        # A body nested thousands deep would raise RecursionError (a 500, or a websocket
        # dropped without a close frame); it is bad JSON instead, which a websocket closes
        # with 4400.
        return load_json_limited(data, self.max_json_depth)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return self.decode_json(data)
        except JSONTooDeep as error:
            raise HTTPException(400, error.message) from error
        except json.JSONDecodeError as error:
            raise HTTPException(400, "Unable to parse request body as JSON") from error

    async def get_context(self, request: Request | WebSocket, response: Any = None) -> Context:  # type: ignore[override]
        return Context(database=self.database, request=request, response=response, settings=self.settings)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        # A token that is sent but not valid (unknown, revoked, expired, a JWT that does not
        # verify) must not quietly become an anonymous socket (whose subscriptions then fail
        # with a puzzling "Not allowed"): refuse the connection, which graphql-transport-ws
        # does by closing it with 4403 Forbidden.
        try:
            await context.caller()
        except AuthenticationFailed as failure:
            raise ConnectionRejectionError({"message": failure.message, "code": "UNAUTHENTICATED"}) from None
        return await super().on_ws_connect(context)

    async def get_sub_response(self, request: Request) -> Response:  # type: ignore[override]
        sub_response = await super().get_sub_response(request)
        media_type = _accepted_media_type(request.headers.get("accept"))
        if media_type is None and not self.should_render_graphql_ide(self.request_adapter_class(request)):
            raise HTTPException(406, f"Send Accept: {GRAPHQL_RESPONSE} or {JSON}.")
        request.state.graphql_media_type = media_type or JSON
        request.state.sub_response = sub_response
        return sub_response

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        data = await super().process_result(request, result)
        is_request_error = (
            result.data is None and bool(result.errors) and all(error.path is None for error in result.errors or ())
        )
        if is_request_error and request.state.graphql_media_type == GRAPHQL_RESPONSE:
            # A request error (parse, validation, auth before execution): no "data" and a 4xx.
            data.pop("data", None)
            # ...unless an extension chose the status already (429 from the cost bucket).
            request.state.sub_response.status_code = request.state.sub_response.status_code or 400
        return data

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:  # type: ignore[override]
        try:
            response = await super().run(request, context, root_value)
        except HTTPException as error:
            # GraphQL over HTTP: a mutation sent with GET is 405 Method Not Allowed.
            if error.status_code == 400 and "not allowed when using GET" in error.reason:
                error = HTTPException(405, "Mutations must be sent with POST.")
            # A request that is not GraphQL at all (no JSON, no query, …) still gets a GraphQL-shaped
            # answer with a code, so a client has one way to read every error.
            return JSONResponse(
                {
                    "errors": [
                        {"message": error.reason, "extensions": {"code": _HTTP_ERROR_CODES.get(error.status_code)}}
                    ]
                },
                status_code=error.status_code,
            )
        media_type = getattr(getattr(request, "state", None), "graphql_media_type", None)
        if isinstance(response, Response) and media_type and response.headers.get("content-type", "").startswith(JSON):
            response.headers["content-type"] = f"{media_type}; charset=utf-8"
        return response


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def make_readyz(database: Database):
    async def readyz(_: Request) -> Response:
        problems = {}
        try:
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # report, never crash the probe
            problems["database"] = type(error).__name__
        try:
            broker = current_broker()
            if hasattr(broker, "client"):
                broker.client.ping()
            elif hasattr(broker, "connection"):
                _ = broker.connection
        except Exception as error:
            problems["broker"] = type(error).__name__
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    return readyz


def create_app(settings: Settings | None = None, *, run_background: bool = True) -> Starlette:
    """The ASGI app. ``run_background``: relay outbox rows (and, embedded, run workers) here."""
    settings = settings or get_settings()
    database = Database(settings.database_url)
    setup(settings.broker_url)
    schema = build_schema(
        hide_introspection=settings.hide_introspection, extra_extensions=(OperationMetrics,), settings=settings
    )
    view = GraphQLView(
        database,
        settings,
        max_json_depth=settings.max_json_depth,
        schema=schema,
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=True,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await check_up_to_date(database.engine)
        async with database.session() as session:
            # Errors about an account can be printed before anything here reads its secrets.
            await remember_configured_secrets(session)
        tasks: list[asyncio.Task[None]] = []
        worker = None
        if settings.pubsub_url:
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(forward_from_redis(settings.pubsub_url, ready)))
            await asyncio.wait_for(ready.wait(), timeout=10)
        if run_background:
            relay = Relay(settings.database_url, Publisher(settings.pubsub_url), send_job)
            tasks.append(asyncio.create_task(relay.run()))
            if settings.broker_url == "memory":
                from dramatiq import Worker

                worker = Worker(current_broker(), worker_threads=settings.embedded_workers)
                worker.start()
        log.info("oms serving", database=database.dialect, broker=settings.broker_url.split("@")[-1])
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if worker is not None:
                worker.stop(timeout=5000)
            await database.dispose()

    return Starlette(
        routes=[
            Route("/graphql", BodyLimit(view, settings.max_body_bytes), methods=["GET", "POST"]),
            WebSocketRoute("/graphql", view),
            Route("/healthz", healthz),
            Route("/readyz", make_readyz(database)),
            Route("/metrics", metrics_endpoint(settings)),
            *webhook_routes(database, settings),
            label_route(database, settings),
            csv_route(database, settings, lambda: schema),
            *dashboard_routes(database, settings),
        ],
        lifespan=lifespan,
    )
