"""A small client for Kuaidi100 (快递100): the signed real-time query and the subscription.

Everything here follows carrier-samples/README.md section 2 ("Real-time query",
"Subscription (订阅) and push").
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from oms_graphql.plugins.calls import Throttle, with_retries
from oms_graphql.plugins.contract import PermanentError, RetryableError

DEFAULT_API_URL = "https://poll.kuaidi100.com"
QUERY_PATH = "/poll/query.do"
SUBSCRIBE_PATH = "/poll"
DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_CALLS_PER_SECOND = 5
# returnCode values (README "Errors"): 500 no result yet; 501 on a subscription is
# "重复订阅" (already subscribed); 501/502 on a query are server error/busy.
NO_RESULT = "500"
DUPLICATE_SUBSCRIPTION = "501"
RETRYABLE_CODES = {"501", "502"}
# What the callback must answer, byte for byte the sample push_ack.json (anything else is retried).
PUSH_ACK = {"result": True, "returnCode": "200", "message": "提交成功"}


def compact_json(value: Any) -> str:
    """Serialise once, compact, UTF-8 kept: the signed string is the sent string."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def query_sign(param: str, key: str, customer: str) -> str:
    """``upper(hex(md5(param + key + customer)))`` over the exact ``param`` sent (vector K-1)."""
    return hashlib.md5((param + key + customer).encode("utf-8")).hexdigest().upper()


def push_sign(param: str, salt: str) -> str:
    """``upper(hex(md5(param + salt)))`` of a push, ``salt`` as given at subscription (K-2, K-3)."""
    return hashlib.md5((param + salt).encode("utf-8")).hexdigest().upper()


def push_sign_matches(param: str, sign: str, salt: str) -> bool:
    return hmac.compare_digest(push_sign(param, salt).encode(), sign.strip().upper().encode())


class Kuaidi100Error(PermanentError):
    """A ``{"result": false, "returnCode", "message"}`` answer that retrying will not fix."""

    def __init__(self, what: str, return_code: str, message: str) -> None:
        hint = {
            "503": "check the customer and key settings",
            "601": "the key has expired or the account has no balance",
            "400": "check the number and the company code",
        }.get(return_code, "see the Kuaidi100 console")
        super().__init__(f"Kuaidi100 {what} failed with returnCode {return_code} {message}: {hint}")
        self.return_code = return_code


class Kuaidi100Client:
    def __init__(
        self,
        api_url: str,
        customer: str,
        key: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.customer = customer
        self.key = key
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.throttle = Throttle.for_account(f"kuaidi100:{customer}", calls_per_second)

    def __enter__(self) -> Kuaidi100Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def query(self, param: dict[str, Any]) -> dict[str, Any] | None:
        """The query reply, or None when Kuaidi100 has no result for the number yet (500)."""
        text = compact_json(param)
        form = {"customer": self.customer, "sign": query_sign(text, self.key, self.customer), "param": text}
        try:
            return with_retries(lambda: self.post(QUERY_PATH, form, "query"))
        except Kuaidi100Error as error:
            if error.return_code == NO_RESULT:
                return None
            raise

    def subscribe(self, param: dict[str, Any]) -> bool:
        # Not signed: the key travels inside param (README, both SDKs).
        form = {"schema": "json", "param": compact_json({**param, "key": self.key})}
        try:
            with_retries(lambda: self.post(SUBSCRIBE_PATH, form, "subscription"))
        except Kuaidi100Error as error:
            if error.return_code == DUPLICATE_SUBSCRIPTION:
                return True
            raise
        return True

    def post(self, path: str, form: dict[str, str], what: str) -> dict[str, Any]:
        self.throttle.wait()
        try:
            response = self.http.post(self.api_url + path, data=form)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"Kuaidi100 {what} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"Kuaidi100 {what} could not be reached: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"Kuaidi100 {what} answered HTTP {response.status_code}", _retry_after(response))
        if response.status_code != 200:
            raise PermanentError(f"Kuaidi100 {what} answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError(f"Kuaidi100 {what} returned a body that is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RetryableError(f"Kuaidi100 {what} returned JSON that is not an object")
        if body.get("result") is False or ("returnCode" in body and str(body["returnCode"]) != "200"):
            code, message = str(body.get("returnCode") or ""), str(body.get("message") or "")
            if code in RETRYABLE_CODES and not (what == "subscription" and code == DUPLICATE_SUBSCRIPTION):
                raise RetryableError(f"Kuaidi100 {what} answered returnCode {code} {message}")
            raise Kuaidi100Error(what, code, message)
        return body


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
