"""Limits on what one HTTP request can make the server read: the body's size and the
nesting of its JSON.

A body is read as a stream and counted as it arrives, so a missing or lying
``Content-Length`` does not help: past the limit the request is answered 413
before anything is parsed. One that declares more than the limit is refused
without reading it at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

BODY_TOO_LARGE = "BODY_TOO_LARGE"


class BodyTooLarge(Exception):
    def __init__(self, limit: int, what: str = "body") -> None:
        super().__init__(f"The request {what} is over the limit of {limit} bytes.")
        self.limit = limit


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_all(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The whole body (and whether the client is still there), or BodyTooLarge past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(body)
        if not message.get("more_body", False):
            return b"".join(chunks), True


async def read_body(request: Request, limit: int) -> bytes:
    """The body of a request handled by a plain Starlette endpoint, at most ``limit`` bytes."""
    declared = _declared_length(request.scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    body, _ = await _read_all(request.receive, limit)
    return body


Responder = Callable[[BodyTooLarge], JSONResponse]


def graphql_too_large(error: BodyTooLarge) -> JSONResponse:
    message = f"{error} Send a smaller document or fewer variables."
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": BODY_TOO_LARGE}}]},
        status_code=413,
        headers={"connection": "close"},
    )


class BodyLimit:
    """ASGI middleware for one route: bodies over ``max_bytes`` are answered 413 unread."""

    def __init__(self, app: ASGIApp, max_bytes: int, too_large: Responder = graphql_too_large) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if len(scope.get("query_string", b"")) > self.max_bytes:
            # A GET carries its document in the URL: held to the same limit as a body.
            await self.too_large(BodyTooLarge(self.max_bytes, "query string"))(scope, receive, send)
            return
        try:
            declared = _declared_length(scope)
            if declared is not None and declared > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            body, connected = await _read_all(receive, self.max_bytes)
        except BodyTooLarge as error:
            await self.too_large(error)(scope, receive, send)
            return
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if not sent and connected:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def nesting_exceeds(value: object, limit: int) -> bool:
    """Whether parsed JSON nests arrays/objects deeper than ``limit`` (an iterative walk:
    the check itself cannot hit the recursion limit)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


class JSONTooDeep(json.JSONDecodeError):
    """JSON nested deeper than the limit: bad input (a websocket treats it as a non-JSON message)."""

    def __init__(self, limit: int) -> None:
        self.message = f"The JSON body is nested deeper than {limit} levels; send flatter variables."
        super().__init__(self.message, "", 0)

    def __str__(self) -> str:
        return self.message


def load_json_limited(data: str | bytes, limit: int) -> object:
    """``json.loads`` that refuses nesting deeper than ``limit`` with ``JSONTooDeep``
    (Python's parser would otherwise raise RecursionError at about a thousand levels)."""
    try:
        value = json.loads(data)
    except RecursionError as error:
        raise JSONTooDeep(limit) from error
    if nesting_exceeds(value, limit):
        raise JSONTooDeep(limit)
    return value


__all__ = ["BodyLimit", "BodyTooLarge", "JSONTooDeep", "load_json_limited", "read_body"]
