"""A small client for the Taobao Open Platform (TOP) REST gateway.

Everything here follows channel-samples/README.md section 1 ("Endpoint and call
shape", "Signing (exact)", "Errors and rate limiting").
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from oms_graphql.plugins.calls import Throttle, with_retries
from oms_graphql.plugins.contract import PermanentError, RetryableError

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOP_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SIGN_METHODS = ("md5", "hmac", "hmac-sha256")
DEFAULT_TIMEOUT_SECONDS = 20.0
# TOP publishes no per-method QPS (README "Errors and rate limiting"); stay well under
# what a standard app gets, and let the seller raise it.
DEFAULT_CALLS_PER_SECOND = 10

# TOP code 7 "App Call Limited" is the throttling answer; its sub_codes start with
# "accesscontrol.limited-by-" (README, "Errors and rate limiting").
APP_CALL_LIMITED = 7
# sub_msg "This ban will last for N more seconds": the README says to sleep N+1 s.
BAN_SECONDS = re.compile(r"ban will last for (\d+) more seconds?", re.IGNORECASE)


class TopError(PermanentError):
    """A TOP ``error_response`` that retrying will not fix (auth or business error)."""

    def __init__(self, method: str, code: int | str | None, msg: str, sub_code: str, sub_msg: str) -> None:
        detail = f"{sub_code}: {sub_msg}" if sub_code or sub_msg else ""
        super().__init__(f"Taobao {method} failed with code {code} {msg} {detail}".strip())
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg


def sign(params: dict[str, Any], secret: str, sign_method: str = "md5") -> str:
    """TOP signature: sorted ``name+value`` pairs (all but ``sign``), hashed per ``sign_method``.

    md5 wraps the string in the secret; hmac / hmac-sha256 use the secret as key
    (README "Signing (exact)"; hmac-sha256 is the README's UNCONFIRMED analogue).
    """
    text = "".join(name + str(params[name]) for name in sorted(params) if name != "sign" and params[name] is not None)
    if sign_method == "md5":
        return hashlib.md5((secret + text + secret).encode("utf-8")).hexdigest().upper()
    if sign_method == "hmac":
        digest = hashlib.md5
    elif sign_method == "hmac-sha256":
        digest = hashlib.sha256
    else:
        raise PermanentError(f"Taobao signMethod {sign_method!r} is not one of {', '.join(SIGN_METHODS)}")
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), digest).hexdigest().upper()


def to_top_time(moment: datetime) -> str:
    """A UTC datetime as TOP wants it: ``yyyy-MM-dd HH:mm:ss`` in GMT+8, no offset."""
    if moment.tzinfo is None:
        raise ValueError("TOP times must be built from timezone-aware datetimes")
    return moment.astimezone(SHANGHAI).strftime(TOP_TIME_FORMAT)


def retry_after_from(sub_msg: str) -> float | None:
    match = BAN_SECONDS.search(sub_msg or "")
    return float(int(match.group(1)) + 1) if match else None


class TaobaoClient:
    """Calls TOP methods for one seller (``session``) of one app (``app_key``)."""

    def __init__(
        self,
        api_url: str,
        app_key: str,
        app_secret: str,
        session: str,
        sign_method: str = "md5",
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
    ) -> None:
        if sign_method not in SIGN_METHODS:
            raise PermanentError(f"Taobao signMethod {sign_method!r} is not one of {', '.join(SIGN_METHODS)}")
        self.api_url = api_url
        self.app_key = app_key
        self.app_secret = app_secret
        self.session = session
        self.sign_method = sign_method
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.throttle = Throttle.for_account(f"taobao:{app_key}", calls_per_second)

    def __enter__(self) -> TaobaoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def system_params(self, method: str) -> dict[str, str]:
        return {
            "method": method,
            "app_key": self.app_key,
            "session": self.session,
            "timestamp": to_top_time(datetime.now(UTC)),
            "format": "json",
            "v": "2.0",
            "sign_method": self.sign_method,
        }

    def call(self, method: str, business: dict[str, Any]) -> dict[str, Any]:
        """Call ``method``; return the object under ``<method>_response``.

        Throttling, server faults and timeouts are tried again a few times after a
        short pause, then raised as ``RetryableError``; ``TopError`` (a
        ``PermanentError``) is raised at once for everything retrying will not fix.
        Every call TOP offers here is safe to repeat: reads, absolute stock
        quantities, and a repeated shipment answers "already shipped" (B04).
        """
        return with_retries(lambda: self.call_once(method, business))

    def call_once(self, method: str, business: dict[str, Any]) -> dict[str, Any]:
        self.throttle.wait()
        system = self.system_params(method)
        form = {name: str(value) for name, value in business.items() if value is not None}
        system["sign"] = sign({**system, **form}, self.app_secret, self.sign_method)
        # The official Python SDK puts system parameters in the query string and
        # business parameters in a form body; both are signed together (README).
        try:
            response = self.http.post(self.api_url, params=system, data=form)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"Taobao {method} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"Taobao {method} could not be reached: {exc}") from exc
        return self.read_response(method, response)

    def read_response(self, method: str, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(
                f"Taobao {method} answered HTTP {response.status_code}",
                retry_after=_retry_after_header(response),
            )
        if response.status_code != 200:
            raise PermanentError(f"Taobao {method} answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError as exc:
            # A cut-off or garbled body is a gateway/proxy hiccup, not the seller's data.
            raise RetryableError(f"Taobao {method} returned a body that is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RetryableError(f"Taobao {method} returned JSON that is not an object")
        if "error_response" in body:
            raise error_from(method, body["error_response"])
        root = method.removeprefix("taobao.").replace(".", "_") + "_response"
        if not isinstance(body.get(root), dict):
            raise RetryableError(f"Taobao {method} returned no {root!r} object")
        return body[root]


def error_from(method: str, error: Any) -> Exception:
    """Classify an ``error_response`` (README "Errors and rate limiting")."""
    if not isinstance(error, dict):
        return RetryableError(f"Taobao {method} returned an unreadable error_response: {error!r}")
    code = error.get("code")
    msg = str(error.get("msg") or "")
    sub_code = str(error.get("sub_code") or "")
    sub_msg = str(error.get("sub_msg") or "")
    text = f"Taobao {method} failed with code {code} {msg} {sub_code}: {sub_msg}".strip()
    if _as_int(code) == APP_CALL_LIMITED or sub_code.startswith("accesscontrol.limited"):
        return RetryableError(text, retry_after=retry_after_from(sub_msg))
    # "isp." sub codes are faults on Taobao's side: retry later. "isv." are ours.
    if sub_code.startswith("isp."):
        return RetryableError(text)
    return TopError(method, code, msg, sub_code, sub_msg)


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after_header(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
