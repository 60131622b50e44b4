"""POST /webhooks/channels/{channelCode} and /webhooks/carriers/{carrierCode}: pushed orders and tracking.

The raw body is committed as an InboundMessage before anything else, so even a
request we refuse is kept. The channel's plugin then checks the signature
(no network I/O, in the request): a bad one is answered 401 and the message
is kept as REJECTED with the plugin's reason; a good one is queued for the
ingest job and answered 200 at once — channels retry slow webhooks.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oms_graphql.db.engine import Database
from oms_graphql.db.models import InboundMessage
from oms_graphql.domain import inbound, tracking
from oms_graphql.domain.carriers import carrier_by_code, carrier_config, carrier_kind
from oms_graphql.domain.channels import channel_config, kind_of
from oms_graphql.domain.errors import NotFound
from oms_graphql.domain.orders import channel_by_code
from oms_graphql.domain.plugin_settings import SecretsUnreadable
from oms_graphql.plugins.contract import PayloadError, WebhookRequest
from oms_graphql.plugins.host import plugin_manager

log = structlog.get_logger(__name__)

MAX_BODY = 5 * 1024 * 1024
# Signature headers are kept so a rejected request can be checked later; auth headers are not.
_DROPPED_HEADERS = {"authorization", "cookie", "proxy-authorization"}


def channel_webhook_route(database: Database) -> Route:
    async def receive(request: Request) -> Response:
        code = request.path_params["channel_code"]
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        headers = {key.lower(): value for key, value in request.headers.items() if key.lower() not in _DROPPED_HEADERS}
        text = body.decode("utf-8", errors="replace")
        async with database.session() as session, session.begin():
            message = await inbound.store_message(
                session, source=code, kind=inbound.WEBHOOK, body=text, headers=headers
            )
            message_id = message.id
            try:
                channel = await channel_by_code(session, code)
                receives = kind_of(channel.kind).receives_webhooks
                config = channel_config(channel)
            except (NotFound, SecretsUnreadable) as error:
                await inbound.reject_message(session, message_id, str(error))
                return JSONResponse({"error": "unknown channel"}, status_code=404)
        if not receives:
            return await _reject(database, message_id, f"{channel.kind} channels do not receive webhooks", 404)
        verdict = plugin_manager().hook.oms_channel_verify_webhook(
            channel=config, request=WebhookRequest(url=str(request.url), headers=headers, body=body)
        )
        if verdict is None:
            return await _reject(database, message_id, f"No installed plugin verifies {channel.kind} webhooks", 404)
        if not verdict.accepted:
            log.warning("webhook rejected", channel=code, message_id=message_id, reason=verdict.reason)
            return await _reject(database, message_id, verdict.reason or "signature check failed", 401)
        async with database.session() as session, session.begin():
            stored = await session.get(InboundMessage, message_id)
            assert stored is not None
            inbound.queue_message(session, stored)
        return JSONResponse({"received": True, "id": message_id})

    return Route("/webhooks/channels/{channel_code}", receive, methods=["POST"])


async def _reject(database: Database, message_id: int, reason: str, status: int) -> Response:
    async with database.session() as session, session.begin():
        await inbound.reject_message(session, message_id, reason)
    body: dict[str, Any] = {"error": "rejected" if status == 401 else "not found", "reason": reason}
    return JSONResponse(body, status_code=status)


def carrier_webhook_route(database: Database) -> Route:
    """Pushed tracking: stored, verified by the carrier's plugin (signature, or the URL's token),
    queued for the tracking job, and answered the way the carrier expects (SF wants a body)."""

    async def receive(request: Request) -> Response:
        code = request.path_params["carrier_code"]
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        headers = {key.lower(): value for key, value in request.headers.items() if key.lower() not in _DROPPED_HEADERS}
        async with database.session() as session, session.begin():
            message = await tracking.store_push(session, code, body.decode("utf-8", errors="replace"), headers)
            message_id = message.id
            try:
                carrier = await carrier_by_code(session, code)
                receives = carrier_kind(carrier.kind).receives_webhooks
                config = carrier_config(carrier)
            except (NotFound, SecretsUnreadable) as error:
                await inbound.reject_message(session, message_id, str(error))
                return JSONResponse({"error": "unknown carrier"}, status_code=404)
        if not receives:
            return await _reject(database, message_id, f"{carrier.kind} carriers do not push tracking", 404)
        hook = plugin_manager().hook
        # The URL as the carrier called it, token included: some carriers (SF) sign nothing else.
        verdict = hook.oms_carrier_verify_webhook(
            carrier=config, request=WebhookRequest(url=str(request.url), headers=headers, body=body)
        )
        if verdict is None or not verdict.accepted:
            reason = "no installed plugin verifies it" if verdict is None else verdict.reason or "not authentic"
            log.warning("tracking push rejected", carrier=code, message_id=message_id, reason=reason)
            return await _reject(database, message_id, reason, 401)
        try:
            push = hook.oms_carrier_parse_tracking_push(carrier=config, body=body)
        except PayloadError as error:
            push, problem = None, str(error)
        else:
            problem = "" if push is not None else f"No installed plugin reads {carrier.kind} tracking pushes"
        async with database.session() as session, session.begin():
            stored = await session.get(InboundMessage, message_id)
            assert stored is not None
            if push is None:
                inbound.record_outcome(stored, inbound.FAILED, error=f"PayloadError: {problem}")
            else:
                tracking.queue_push(session, stored)
        if push is None:
            return JSONResponse({"error": "unreadable", "reason": problem, "id": message_id}, status_code=400)
        return Response(push.response_body, status_code=push.response_status, media_type=push.response_media_type)

    return Route("/webhooks/carriers/{carrier_code}", receive, methods=["POST"])


def routes(database: Database) -> list[Route]:
    """The webhook routes, for app.py."""
    return [channel_webhook_route(database), carrier_webhook_route(database)]
