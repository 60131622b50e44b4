"""HTTP client for the Amazon Selling Partner API: LWA tokens, throttling, typed errors.

References are to /work/shared/channel-samples/README.md, section 3 (Amazon SP-API Orders v0).
"""

from __future__ import annotations

import email.utils
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from oms_graphql.plugins.contract import PermanentError, RetryableError

DEFAULT_TIMEOUT_SECONDS = 30.0

# The official LWA client refreshes a token 30 s before it expires and assumes 1800 s
# when the answer has no expires_in (README 3, "Auth").
TOKEN_EXPIRY_MARGIN_SECONDS = 30.0
DEFAULT_TOKEN_LIFETIME_SECONDS = 1800.0


class RejectedRequest(PermanentError):
    """Amazon refused this request's content (HTTP 400/404), not our credentials."""


@dataclass
class _CachedToken:
    access_token: str
    refresh_at: float  # time.monotonic() after which we exchange again


# One access token per (token URL, app, seller authorisation), shared by every call in
# this process: getOrders alone allows one request a minute, so exchanging a token per
# call would double the traffic for nothing.
_tokens: dict[tuple[str, str, str], _CachedToken] = {}
_tokens_lock = threading.Lock()


class RateLimiter:
    """A token bucket that waits instead of letting Amazon answer 429.

    SP-API throttles per operation with a rate (requests/second) and a burst (README 3,
    endpoint table). Fetching the items of a page of orders is a burst of getOrderItems
    calls; pacing them here keeps a page from failing halfway on every retry.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, operation: str = "call", longest: float = 2.0) -> None:
        """Take one token, waiting up to ``longest`` seconds for it.

        A longer wait (getOrders refills one token a minute) is not slept away in a
        worker thread: it becomes a RetryableError so the job is retried then.
        """
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1:
                delay = (1 - self._tokens) / self.rate
                if delay > longest:
                    raise RetryableError(
                        f"Amazon {operation} quota: the next call is allowed in {delay:.0f} s", retry_after=delay
                    )
                time.sleep(delay)
                self._updated = time.monotonic()
                self._tokens = 1.0
            self._tokens -= 1


_limiters: dict[tuple[str, str], RateLimiter] = {}
_limiters_lock = threading.Lock()


def rate_limiter(endpoint: str, operation: str, rate: float, burst: int) -> RateLimiter:
    """The shared limiter of one SP-API operation at one endpoint."""
    with _limiters_lock:
        key = (endpoint, operation)
        if key not in _limiters:
            _limiters[key] = RateLimiter(rate, burst)
        return _limiters[key]


def forget_cached_tokens() -> None:
    """Drop every cached access token (tests; a rotated refresh token)."""
    with _tokens_lock:
        _tokens.clear()


def retry_after_seconds(response: httpx.Response) -> float | None:
    """How long Amazon asks us to wait: ``Retry-After``, else one request's worth of the rate limit."""
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            when = email.utils.parsedate_to_datetime(header)
            if when is not None:
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    # x-amzn-RateLimit-Limit is the sustained rate in requests per second (README 3,
    # "Errors and throttling"): one token comes back after 1/rate seconds.
    limit = response.headers.get("x-amzn-ratelimit-limit")
    if limit:
        try:
            rate = float(limit)
        except ValueError:
            return None
        if rate > 0:
            return 1.0 / rate
    return None


def error_text(response: httpx.Response) -> str:
    """Amazon's own words for a failed call: ``errors[].code: message``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or f"HTTP {response.status_code}"
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        parts = []
        for error in errors:
            if isinstance(error, dict):
                detail = f" ({error['details']})" if error.get("details") else ""
                parts.append(f"{error.get('code')}: {error.get('message')}{detail}")
        return "; ".join(parts)
    if isinstance(body, dict) and "error" in body:  # LWA answers OAuth-style errors
        return f"{body.get('error')}: {body.get('error_description', '')}"
    return response.text[:200]


class SellingPartnerClient:
    """Calls SP-API for one channel's settings. Use as a context manager."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.endpoint = str(settings["endpoint"]).rstrip("/")
        self.token_url = str(settings["tokenUrl"])
        self.client_id = str(settings["clientId"])
        self.client_secret = str(settings["clientSecret"])
        self.refresh_token = str(settings["refreshToken"])
        seconds = float(settings.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS)
        self.http = httpx.Client(timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)))

    def __enter__(self) -> SellingPartnerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    # --- Login with Amazon -------------------------------------------------

    @property
    def _token_key(self) -> tuple[str, str, str]:
        return (self.token_url, self.client_id, self.refresh_token)

    def access_token(self) -> str:
        """A valid LWA access token, exchanged only when the cached one is about to expire."""
        with _tokens_lock:
            cached = _tokens.get(self._token_key)
            if cached and time.monotonic() < cached.refresh_at:
                return cached.access_token
            token = self._exchange_refresh_token()
            _tokens[self._token_key] = token
            return token.access_token

    def _forget_token(self, access_token: str) -> None:
        with _tokens_lock:
            cached = _tokens.get(self._token_key)
            if cached and cached.access_token == access_token:
                del _tokens[self._token_key]

    def _exchange_refresh_token(self) -> _CachedToken:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        response = self._send("POST", self.token_url, data=form)
        if response.status_code in (400, 401, 403):
            raise PermanentError(
                f"Amazon login (LWA) refused the credentials: {error_text(response)}. "
                "Check clientId, clientSecret and refreshToken of the channel."
            )
        self._raise_for_status(response, "LWA token exchange")
        body = self._json(response, "LWA token exchange")
        access_token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise RetryableError("Amazon login (LWA) answered without an access_token; retrying")
        lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME_SECONDS)
        refresh_at = time.monotonic() + max(0.0, lifetime - TOKEN_EXPIRY_MARGIN_SECONDS)
        return _CachedToken(access_token, refresh_at)

    # --- SP-API calls ------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        operation: str,
    ) -> httpx.Response:
        """Call SP-API with the access token; return the successful response.

        A 401/403 with a cached token is retried once with a fresh one: the token can
        expire at Amazon before our clock says so.
        """
        for attempt in (1, 2):
            token = self.access_token()
            response = self._send(
                method,
                self.endpoint + path,
                params=params,
                json=json,
                headers={"x-amz-access-token": token, "accept": "application/json"},
            )
            if response.status_code in (401, 403) and attempt == 1:
                self._forget_token(token)
                continue
            break
        if response.status_code in (400, 401, 403, 404):
            raise PermanentError(f"Amazon {operation} failed (HTTP {response.status_code}): {error_text(response)}")
        self._raise_for_status(response, operation)
        return response

    def get_json(self, path: str, *, params: dict[str, Any] | None = None, operation: str) -> dict[str, Any]:
        response = self.call("GET", path, params=params, operation=operation)
        body = self._json(response, operation)
        if not isinstance(body, dict):
            raise RetryableError(f"Amazon {operation} answered a JSON {type(body).__name__}, not an object")
        return body

    # --- transport ---------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"Amazon did not answer in time ({method} {url}): {exc!r}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"Could not reach Amazon ({method} {url}): {exc!r}") from exc

    @staticmethod
    def _raise_for_status(response: httpx.Response, operation: str) -> None:
        status = response.status_code
        if status == 429:
            raise RetryableError(
                f"Amazon throttled {operation}: {error_text(response)}",
                retry_after=retry_after_seconds(response),
            )
        if status >= 500:
            raise RetryableError(
                f"Amazon {operation} failed on Amazon's side (HTTP {status}): {error_text(response)}",
                retry_after=retry_after_seconds(response) if status == 503 else None,
            )
        if status >= 400:
            raise PermanentError(f"Amazon {operation} failed (HTTP {status}): {error_text(response)}")

    @staticmethod
    def _json(response: httpx.Response, operation: str) -> Any:
        # A 200 whose body is not JSON is a cut-off or proxy page; it clears on retry.
        try:
            return response.json()
        except ValueError as exc:
            raise RetryableError(
                f"Amazon {operation} answered HTTP {response.status_code} with a body that is not JSON: "
                f"{response.text[:120]!r}"
            ) from exc
