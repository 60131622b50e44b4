"""HTTP client for the store POS (Square-shaped API): Bearer auth, typed errors.

References are to /work/shared/channel-samples/README.md section 4 (Store POS: Square).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import httpx

from oms_graphql.plugins.contract import PermanentError, RetryableError

DEFAULT_TIMEOUT_SECONDS = 30.0

# Square pins behaviour per API version with the Square-Version header (README 4, "Endpoints
# and auth"); this is the version the mapping was written against.
SQUARE_VERSION = "2025-03-19"


class RejectedRequest(PermanentError):
    """The POS refused this request's content (HTTP 400/404), not our credentials."""


def webhook_signature(notification_url: str, raw_body: bytes, signature_key: str) -> str:
    """``base64(HMAC-SHA256(key, notification_url + raw_body))`` (README 4, "Webhook signature")."""
    digest = hmac.new(signature_key.encode(), notification_url.encode() + raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def retry_after_seconds(response: httpx.Response) -> float | None:
    # Square publishes no fixed limits (README 4, "Errors / rate limits"): honour
    # Retry-After when it is sent, else let the job back off.
    header = response.headers.get("retry-after")
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        when = email.utils.parsedate_to_datetime(header)
        return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when else None


def error_text(response: httpx.Response) -> str:
    """The POS's own words: ``category/code: detail`` of each error."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or f"HTTP {response.status_code}"
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        return "; ".join(
            f"{e.get('category')}/{e.get('code')}: {e.get('detail', '')}" for e in errors if isinstance(e, dict)
        )
    return response.text[:200]


class PosClient:
    """Calls the POS API for one channel's settings. Use as a context manager."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.api_url = str(settings["apiUrl"]).rstrip("/")
        seconds = float(settings.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
        self.http = httpx.Client(
            timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
            headers={
                "Authorization": f"Bearer {settings['accessToken']}",
                "Square-Version": SQUARE_VERSION,
                "Accept": "application/json",
            },
        )

    def __enter__(self) -> PosClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def call(self, method: str, path: str, *, json: Any = None, operation: str) -> dict[str, Any]:
        """Send one request; return the decoded JSON object of a successful answer."""
        try:
            response = self.http.request(method, self.api_url + path, json=json)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"The POS did not answer {operation} in time: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"Could not reach the POS for {operation}: {exc!r}") from exc
        status = response.status_code
        if status == 429:
            raise RetryableError(
                f"The POS rate-limited {operation}: {error_text(response)}",
                retry_after=retry_after_seconds(response),
            )
        if status >= 500:
            raise RetryableError(f"The POS failed {operation} (HTTP {status}): {error_text(response)}")
        if status in (401, 403):
            raise PermanentError(
                f"The POS refused {operation} (HTTP {status}): {error_text(response)}. Check the channel's accessToken."
            )
        if status >= 400:
            raise RejectedRequest(f"The POS rejected {operation} (HTTP {status}): {error_text(response)}")
        try:
            body = response.json()
        except ValueError as exc:
            # A 200 that is not JSON is a cut-off or proxy page; it clears on retry.
            raise RetryableError(
                f"The POS answered {operation} with a body that is not JSON: {response.text[:120]!r}"
            ) from exc
        if not isinstance(body, dict):
            raise RetryableError(f"The POS answered {operation} with a JSON {type(body).__name__}, not an object")
        return body
