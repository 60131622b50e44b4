"""POST /webhooks/channels/{channelCode} and /webhooks/carriers/{carrierCode}: pushed orders and tracking.

Anyone can post to these URLs, so what an unauthenticated sender can make us
store is bounded (``domain/webhook_intake``):

- the body is read up to ``OMS_WEBHOOK_MAX_BODY_BYTES`` (413 past it);
- a code no channel/carrier has, or one that receives no webhooks, is 404 and
  nothing is stored;
- the sender's plugin checks the signature (no network I/O, in the request). A bad
  one is answered 401 and kept as REJECTED with the plugin's reason, cut to
  ``OMS_WEBHOOK_REJECTED_BODY_BYTES`` and at most ``OMS_WEBHOOK_REJECTED_PER_HOUR``
  per sender; a signed timestamp older than ``OMS_WEBHOOK_TOLERANCE_SECONDS`` is
  refused the same way, and a signed event id received already is a replay: 409,
  nothing stored;
- a good one is stored whole and queued for its job in one transaction, and
  answered at once — channels retry slow webhooks. A process that dies before
  that commits has answered nothing, so the sender retries.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oms_graphql.config import Settings
from oms_graphql.db.engine import Database
from oms_graphql.db.models import InboundMessage
from oms_graphql.domain import inbound, tracking, webhook_intake
from oms_graphql.domain.carriers import carrier_by_code, carrier_config, carrier_kind
from oms_graphql.domain.channels import channel_config, kind_of
from oms_graphql.domain.errors import NotFound
from oms_graphql.domain.orders import channel_by_code
from oms_graphql.domain.plugin_settings import SecretsUnreadable
from oms_graphql.http_limits import BodyTooLarge, read_body
from oms_graphql.plugins.contract import PayloadError, WebhookRequest, WebhookVerdict
from oms_graphql.plugins.host import plugin_manager

log = structlog.get_logger(__name__)

# Signature headers are kept so a rejected request can be checked later; auth headers are not.
_DROPPED_HEADERS = {"authorization", "cookie", "proxy-authorization"}


def _headers(request: Request) -> dict[str, str]:
    return {key.lower(): value for key, value in request.headers.items() if key.lower() not in _DROPPED_HEADERS}


def _not_found(reason: str) -> Response:
    return JSONResponse({"error": "not found", "reason": reason}, status_code=404)


def _too_large(error: BodyTooLarge) -> Response:
    return JSONResponse(
        {"error": "body too large", "reason": str(error)}, status_code=413, headers={"connection": "close"}
    )


class _Intake:
    """The checks and storage both routes share."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    async def refuse(
        self, source: str, kind: str, body: bytes, headers: dict[str, str], reason: str, status: int = 401
    ) -> Response:
        log.warning("pushed request refused", source=source, kind=kind, reason=reason)
        async with self.database.session() as session, session.begin():
            await webhook_intake.keep_rejected(
                session,
                source=source,
                kind=kind,
                body=body,
                headers=headers,
                reason=reason,
                per_hour=self.settings.webhook_rejected_per_hour,
                max_bytes=self.settings.webhook_rejected_body_bytes,
            )
        return JSONResponse({"error": "rejected", "reason": reason}, status_code=status)

    def stale(self, verdict: WebhookVerdict) -> str | None:
        return webhook_intake.staleness(verdict.signed_at, self.settings.webhook_tolerance_seconds)

    async def store(
        self, source: str, kind: str, body: bytes, headers: dict[str, str], verdict: WebhookVerdict, queue: Any
    ) -> InboundMessage | Response:
        """Store and queue an authentic delivery (``queue(session, message)``), or answer a replay."""
        async with self.database.session() as session, session.begin():
            message = await webhook_intake.store_authentic(
                session, source=source, kind=kind, body=body, headers=headers, event_id=verdict.event_id
            )
            if message is not None:
                queue(session, message)
        if message is None:
            log.warning("replayed delivery refused", source=source, kind=kind, event_id=verdict.event_id)
            return JSONResponse(
                {"error": "duplicate", "reason": f"event {verdict.event_id} was received already"}, status_code=409
            )
        return message


def channel_webhook_route(database: Database, settings: Settings) -> Route:
    intake = _Intake(database, settings)

    async def receive(request: Request) -> Response:
        code = request.path_params["channel_code"]
        try:
            body = await read_body(request, settings.webhook_max_body_bytes)
        except BodyTooLarge as error:
            return _too_large(error)
        async with database.session() as session:
            try:
                channel = await channel_by_code(session, code)
                config = channel_config(channel)
            except (NotFound, SecretsUnreadable) as error:
                return _not_found(str(error))
        if not kind_of(channel.kind).receives_webhooks:
            return _not_found(f"{channel.kind} channels do not receive webhooks")
        headers = _headers(request)
        verdict = plugin_manager().hook.oms_channel_verify_webhook(
            channel=config, request=WebhookRequest(url=str(request.url), headers=headers, body=body)
        )
        if verdict is None:
            return _not_found(f"No installed plugin verifies {channel.kind} webhooks")
        if not verdict.accepted:
            return await intake.refuse(code, inbound.WEBHOOK, body, headers, verdict.reason or "signature check failed")
        if problem := intake.stale(verdict):
            return await intake.refuse(code, inbound.WEBHOOK, body, headers, problem)
        stored = await intake.store(code, inbound.WEBHOOK, body, headers, verdict, inbound.queue_message)
        if isinstance(stored, Response):
            return stored
        return JSONResponse({"received": True, "id": stored.id})

    return Route("/webhooks/channels/{channel_code}", receive, methods=["POST"])


def carrier_webhook_route(database: Database, settings: Settings) -> Route:
    """Pushed tracking: verified by the carrier's plugin (signature, or the URL's token),
    stored, queued for the tracking job, and answered the way the carrier expects (SF wants a body)."""
    intake = _Intake(database, settings)

    async def receive(request: Request) -> Response:
        code = request.path_params["carrier_code"]
        try:
            body = await read_body(request, settings.webhook_max_body_bytes)
        except BodyTooLarge as error:
            return _too_large(error)
        async with database.session() as session:
            try:
                carrier = await carrier_by_code(session, code)
                config = carrier_config(carrier)
            except (NotFound, SecretsUnreadable) as error:
                return _not_found(str(error))
        if not carrier_kind(carrier.kind).receives_webhooks:
            return _not_found(f"{carrier.kind} carriers do not push tracking")
        headers = _headers(request)
        hook = plugin_manager().hook
        # The URL as the carrier called it, token included: some carriers (SF) sign nothing else.
        verdict = hook.oms_carrier_verify_webhook(
            carrier=config, request=WebhookRequest(url=str(request.url), headers=headers, body=body)
        )
        if verdict is None:
            return _not_found(f"No installed plugin verifies {carrier.kind} tracking pushes")
        if not verdict.accepted:
            return await intake.refuse(code, tracking.TRACKING, body, headers, verdict.reason or "not authentic")
        if problem := intake.stale(verdict):
            return await intake.refuse(code, tracking.TRACKING, body, headers, problem)
        try:
            push = hook.oms_carrier_parse_tracking_push(carrier=config, body=body)
        except PayloadError as error:
            push, problem = None, str(error)
        else:
            problem = "" if push is not None else f"No installed plugin reads {carrier.kind} tracking pushes"

        def queue(session: Any, message: InboundMessage) -> None:
            if push is None:
                inbound.record_outcome(message, inbound.FAILED, error=f"PayloadError: {problem}")
            else:
                tracking.queue_push(session, message)

        stored = await intake.store(code, tracking.TRACKING, body, headers, verdict, queue)
        if isinstance(stored, Response):
            return stored
        if push is None:
            return JSONResponse({"error": "unreadable", "reason": problem, "id": stored.id}, status_code=400)
        return Response(push.response_body, status_code=push.response_status, media_type=push.response_media_type)

    return Route("/webhooks/carriers/{carrier_code}", receive, methods=["POST"])


def routes(database: Database, settings: Settings) -> list[Route]:
    """The webhook routes, for app.py."""
    return [channel_webhook_route(database, settings), carrier_webhook_route(database, settings)]
