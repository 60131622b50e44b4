"""A small client for the JD Open Service (JOS) ``routerjson`` gateway.

Everything here follows channel-samples/README.md section 2 ("Endpoint and call
shape", "Signing (exact)", "Errors and rate limiting").
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from oms_graphql.plugins.calls import Throttle, with_retries
from oms_graphql.plugins.contract import PermanentError, RetryableError

SHANGHAI = ZoneInfo("Asia/Shanghai")
JD_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_TIMEOUT_SECONDS = 20.0

# README: "Treat gateway errors as retryable with backoff, except auth errors 19/21."
# 11/12 (missing / invalid signature) come from JD's published gateway error table
# (quoted by third parties, not in the README): a wrong appSecret never heals by itself.
PERMANENT_GATEWAY_CODES = {"11", "12", "19", "21"}
# Known throttling / transient codes: "2" App Call Limited (same third-party table) and
# "66", which the official .NET SDK retries (README, meaning unconfirmed). Every other
# gateway code is retried too; these are named so the message says "throttled".
THROTTLE_CODES = {"2", "66"}


class JosError(PermanentError):
    """A JOS error that retrying will not fix (auth, or a business ``success=false``)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def sign(params: dict[str, Any], secret: str) -> str:
    """JOS signature: ``upper(md5(secret + Σ sorted(name+value) + secret))``.

    Every parameter but ``sign``; empty values are skipped (.NET ``JdUtils.SignJdRequest``).
    ``360buy_param_json`` is signed as the exact string that is sent.
    """
    text = "".join(
        name + str(params[name])
        for name in sorted(params)
        if name != "sign" and params[name] is not None and str(params[name]) != ""
    )
    return hashlib.md5((secret + text + secret).encode("utf-8")).hexdigest().upper()


def to_jd_time(moment: datetime) -> str:
    """A UTC datetime as JD wants it in business params: GMT+8 ``yyyy-MM-dd HH:mm:ss``."""
    if moment.tzinfo is None:
        raise ValueError("JD times must be built from timezone-aware datetimes")
    return moment.astimezone(SHANGHAI).strftime(JD_TIME_FORMAT)


CALLS_PER_SECOND = 10


def request_timestamp(moment: datetime) -> str:
    # .NET SDK: "yyyy-MM-dd HH:mm:ss.fff" + zone without colon, e.g. "...16:00:00.000+0800".
    local = moment.astimezone(SHANGHAI)
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def param_json(business: dict[str, Any]) -> str:
    return json.dumps(business, ensure_ascii=False, separators=(",", ":"))


class JdClient:
    """Calls JOS methods for one shop (``access_token``) of one app (``app_key``)."""

    def __init__(
        self,
        api_url: str,
        app_key: str,
        app_secret: str,
        access_token: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.api_url = api_url
        self.app_key = app_key
        self.app_secret = app_secret
        self.access_token = access_token
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        # JOS limits are per app and method and unpublished (README): stay modest.
        self.throttle = Throttle.for_account(f"jd:{app_key}", CALLS_PER_SECOND)

    def __enter__(self) -> JdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, business: dict[str, Any]) -> dict[str, Any]:
        """Call ``method``; return the object under ``<method>_responce`` (JD's spelling).

        Throttling, gateway faults and timeouts are tried again a few times after a
        short pause, then raised as ``RetryableError``; ``JosError`` (a
        ``PermanentError``) is raised at once for auth errors. Business results
        (``apiResult.success``) are the caller's to check.
        """
        return with_retries(lambda: self.call_once(method, business))

    def call_once(self, method: str, business: dict[str, Any]) -> dict[str, Any]:
        self.throttle.wait()
        params = {
            "method": method,
            "app_key": self.app_key,
            "access_token": self.access_token,
            "timestamp": request_timestamp(datetime.now(UTC)),
            "v": "2.0",
            "360buy_param_json": param_json(business),
        }
        params["sign"] = sign(params, self.app_secret)
        try:
            response = self.http.post(self.api_url, data=params)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"JD {method} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"JD {method} could not be reached: {exc}") from exc
        return self.read_response(method, response)

    def read_response(self, method: str, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(
                f"JD {method} answered HTTP {response.status_code}", retry_after=_retry_after(response)
            )
        if response.status_code != 200:
            raise PermanentError(f"JD {method} answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError(f"JD {method} returned a body that is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RetryableError(f"JD {method} returned JSON that is not an object")
        if "error_response" in body:
            raise gateway_error(method, body["error_response"])
        root = method.replace(".", "_") + "_responce"
        if not isinstance(body.get(root), dict):
            raise RetryableError(f"JD {method} returned no {root!r} object")
        return body[root]


def gateway_error(method: str, error: Any) -> Exception:
    """Classify ``{"error_response": {"code": "19", "zh_desc": ..., "en_desc": ...}}``."""
    if not isinstance(error, dict):
        return RetryableError(f"JD {method} returned an unreadable error_response: {error!r}")
    code = str(error.get("code", ""))
    text = f"JD {method} failed with gateway code {code}: {error.get('en_desc', '')} {error.get('zh_desc', '')}"
    if code in PERMANENT_GATEWAY_CODES:
        return JosError(text.strip() + " (check appKey, appSecret and accessToken)", code)
    if code in THROTTLE_CODES:
        return RetryableError(text.strip() + " (throttled)")
    return RetryableError(text.strip())


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
