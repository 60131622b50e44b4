"""A small client for the EasyPost REST API (v2), and its webhook signature.

Everything here follows carrier-samples/README.md section 3 ("Endpoints and call
shape", "Errors", "Webhooks and tracker.updated").
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from typing import Any
from urllib.parse import quote

import httpx

from oms_graphql.plugins.calls import Throttle, with_retries
from oms_graphql.plugins.contract import PermanentError, RetryableError

DEFAULT_API_URL = "https://api.easypost.com/v2"
# The official client waits 60 s; a job should give up sooner and retry.
DEFAULT_TIMEOUT_SECONDS = 30.0
# EasyPost's numeric rate limits are not published (README: UNCONFIRMED).
DEFAULT_CALLS_PER_SECOND = 5
SIGNATURE_HEADER = "x-hmac-signature"
SIGNATURE_PREFIX = "hmac-sha256-hex="
# 408 (timeout) is the only 4xx worth trying again; 429 and 5xx are the README's
# "retry with backoff", every other 4xx (401 key, 402 billing, 422 address…) is ours.
RETRYABLE_4XX = {408, 429}


def webhook_signature(raw_body: bytes, webhook_secret: str) -> str:
    """The ``X-Hmac-Signature`` value EasyPost sends: HMAC-SHA256 over the raw body,
    keyed with the NFKD-normalised secret (official SDK ``validate_webhook``)."""
    key = unicodedata.normalize("NFKD", webhook_secret).encode("utf-8")
    return SIGNATURE_PREFIX + hmac.new(key, raw_body, hashlib.sha256).hexdigest()


def signature_matches(raw_body: bytes, header: str, webhook_secret: str) -> bool:
    """Constant-time comparison of a received header with the body's signature."""
    return hmac.compare_digest(webhook_signature(raw_body, webhook_secret).encode(), header.strip().encode())


class EasyPostError(PermanentError):
    """An EasyPost ``{"error": {code, message, errors}}`` answer that retrying will not fix."""

    def __init__(self, what: str, status: int, code: str, message: str, details: list[str]) -> None:
        text = f"EasyPost {what} was refused (HTTP {status} {code}): {message}"
        if details:
            text += " — " + "; ".join(details)
        super().__init__(text)
        self.status = status
        self.code = code
        self.api_message = message
        self.details = details


class EasyPostClient:
    """Calls the EasyPost API with one API key (test or production)."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        # HTTP Basic with the key as user and an empty password (curl -u KEY:).
        self.http = httpx.Client(
            auth=(api_key, ""), timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), follow_redirects=True
        )
        # Key the shared throttle by a digest: the key itself is a secret.
        account = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self.throttle = Throttle.for_account(f"easypost:{account}", calls_per_second)

    def __enter__(self) -> EasyPostClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # --- the calls the plugin makes -----------------------------------------

    def create_shipment(self, shipment: dict[str, Any], retry: bool = True) -> dict[str, Any]:
        # Safe to repeat: an unbought shipment costs nothing (README "Idempotency").
        def once() -> dict[str, Any]:
            return self.request("POST", "/shipments", "create shipment", {"shipment": shipment})

        return with_retries(once) if retry else once()

    def get_shipment(self, id_or_reference: str, retry: bool = True) -> dict[str, Any] | None:
        """The shipment, or None when EasyPost has none by that id or reference.

        EasyPost accepts a ``reference`` in place of an id in many endpoints
        (docs.easypost.com/docs/easypost-objects), which is how a retried create
        finds the shipment it made before its answer was lost.
        """
        path = "/shipments/" + quote(id_or_reference, safe="")

        def once() -> dict[str, Any]:
            return self.request("GET", path, "look up shipment")

        try:
            return with_retries(once) if retry else once()
        except EasyPostError as error:
            if error.status == 404:
                return None
            raise

    def buy(self, shipment_id: str, rate_id: str) -> dict[str, Any]:
        # Not retried here: after a lost answer the caller looks the shipment up
        # before it buys again (a purchased shipment must not be bought twice).
        path = f"/shipments/{quote(shipment_id, safe='')}/buy"
        return self.request("POST", path, "buy postage", {"rate": {"id": rate_id}})

    def refund(self, shipment_id: str) -> dict[str, Any]:
        # Safe to repeat: a second request for a refunded shipment answers its refund_status
        # (docs.easypost.com/docs/shipments/shipping-refund: "retry ... by submitting the same request").
        path = f"/shipments/{quote(shipment_id, safe='')}/refund"
        return with_retries(lambda: self.request("POST", path, "refund postage"))

    def convert_label(self, shipment_id: str, file_format: str) -> dict[str, Any]:
        path = f"/shipments/{quote(shipment_id, safe='')}/label"
        return with_retries(lambda: self.request("GET", path, "convert label", params={"file_format": file_format}))

    def create_tracker(self, tracking_code: str, carrier: str | None = None) -> dict[str, Any]:
        tracker: dict[str, Any] = {"tracking_code": tracking_code}
        if carrier:
            tracker["carrier"] = carrier
        return with_retries(lambda: self.request("POST", "/trackers", "create tracker", {"tracker": tracker}))

    def download(self, url: str) -> tuple[bytes, str]:
        """A label file (a public S3 URL in production): its bytes and content type."""

        def once() -> tuple[bytes, str]:
            self.throttle.wait()
            try:
                # The files host is not the API: send no API key there.
                response = httpx.get(url, timeout=self.http.timeout, follow_redirects=True)
            except httpx.TimeoutException as exc:
                raise RetryableError(f"EasyPost label download timed out: {exc}") from exc
            except httpx.TransportError as exc:
                raise RetryableError(f"EasyPost label could not be downloaded: {exc}") from exc
            if response.status_code in RETRYABLE_4XX or response.status_code >= 500:
                raise RetryableError(
                    f"EasyPost label download answered HTTP {response.status_code}",
                    retry_after=_retry_after(response),
                )
            if response.status_code != 200:
                raise PermanentError(f"EasyPost label download answered HTTP {response.status_code}: {url}")
            return response.content, response.headers.get("content-type", "").split(";")[0].strip()

        return with_retries(once)

    # --- transport -------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        what: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self.throttle.wait()
        try:
            response = self.http.request(method, self.api_url + path, json=body, params=params)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"EasyPost {what} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"EasyPost {what} could not be reached: {exc}") from exc
        return read_response(what, response)


def read_response(what: str, response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status in RETRYABLE_4XX or status >= 500:
        code, message, _ = _error_parts(response)
        raise RetryableError(
            f"EasyPost {what} answered HTTP {status} {code}: {message}".rstrip(": "),
            retry_after=_retry_after(response),
        )
    if status >= 400:
        code, message, details = _error_parts(response)
        raise EasyPostError(what, status, code, message, details)
    try:
        body = response.json()
    except ValueError as exc:
        # A cut-off body from a proxy: the call may be repeated (buy: after a look-up).
        raise RetryableError(f"EasyPost {what} returned a body that is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise RetryableError(f"EasyPost {what} returned JSON that is not an object")
    return body


def _error_parts(response: httpx.Response) -> tuple[str, str, list[str]]:
    """``code``, ``message`` and the ``errors[]`` texts; ``errors[]`` holds FieldError
    objects or plain strings (README "Errors": both formats were recorded)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        # A proxy's HTML page says nothing a person could act on beyond its status.
        text = response.text[:200].strip()
        return "", "" if text.startswith("<") else text, []
    details = []
    for item in error.get("errors") or []:
        if isinstance(item, dict):
            field, message = item.get("field"), item.get("message")
            details.append(f"{field}: {message}" if field else str(message))
        else:
            details.append(str(item))
    return str(error.get("code") or ""), str(error.get("message") or ""), details


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
