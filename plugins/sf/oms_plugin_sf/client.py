"""A small client for the SF Express Open Platform (丰桥) gateway, ``/std/service``.

Everything here follows carrier-samples/README.md section 1 ("Endpoints and call
shape", "Signing (exact)", "Gateway result codes"). One URL serves every API: a
form POST whose ``serviceCode`` picks the API and whose ``msgData`` is the
business JSON as one string. The gateway answers HTTP 200 with
``apiResultCode`` (A1000 = the gateway accepted the call) and ``apiResultData``,
a JSON *string* holding the business result ``{success, errorCode, errorMsg, msgData}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.parse
import uuid
from typing import Any

import httpx

from oms_graphql.plugins.calls import Throttle, with_retries
from oms_graphql.plugins.contract import PayloadError, PermanentError, RetryableError

DEFAULT_TIMEOUT_SECONDS = 20.0
# The sandbox allows 30 calls/s per interface and customer (README, A1005);
# production quotas are not published. Stay well under and let the merchant raise it.
DEFAULT_CALLS_PER_SECOND = 10

GATEWAY_OK = "A1000"
# README "Gateway result codes": what retrying can fix. A1002 is a clock off by more
# than the (undocumented) window: retried later, and the message says to check the clock.
RETRYABLE_GATEWAY_CODES = {
    "A1002": "the request timestamp is outside SF's window: check this server's clock",
    "A1005": "SF is rate limiting this customer (流量受控; sandbox: 30 calls/s, 3000 calls/day per API)",
    "A1009": "an SF service behind the gateway is unavailable",
    "A1011": "the OAuth2 access token is invalid or expired",
    "A1099": "SF's gateway reported a system error",
}
PERMANENT_GATEWAY_CODES = {
    "A1001": "a required form field is missing or msgData is not JSON (a bug in the plugin: report it)",
    "A1003": "this server's IP address is not allowed: add it in the 丰桥 console",
    "A1004": "no permission for this API, or the partnerId belongs to the other environment (sandbox vs production)",
    "A1006": "the signature is invalid (数字签名无效): check the checkWord and partnerId settings",
    "A1008": "SF could not decrypt the request",
    "A1010": "the account is still in sandbox state: use the sandbox gateway or finish going live",
}


def java_urlencode(text: str) -> str:
    """``java.net.URLEncoder.encode(text, "UTF-8")``, which SF's gateway (Java) uses to check.

    Python's ``quote_plus`` differs on two characters: Java keeps ``*`` and encodes
    ``~`` (README "Encoder trap"; vector SF-2 fails with plain ``quote_plus``).
    """
    return urllib.parse.quote_plus(text, safe="*").replace("~", "%7E")


def msg_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """``msgDigest`` exactly as the official Java SDK computes it (README "Signing (exact)"):
    base64 of the binary MD5 of the Java-URL-encoded ``msgData + timestamp + checkword``."""
    encoded = java_urlencode(msg_data + timestamp + checkword)
    return base64.b64encode(hashlib.md5(encoded.encode("utf-8")).digest()).decode("ascii")


def compact_json(value: Any) -> str:
    """The one serialisation of ``msgData``: it is signed and sent as this very string."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class SfBusinessError(PermanentError):
    """SF accepted the call at the gateway but refused the request (``success: false``)."""

    def __init__(self, service_code: str, code: str, message: str, hint: str = "") -> None:
        text = f"SF {service_code} refused the request: {code} {message}".strip()
        super().__init__(f"{text}. {hint}" if hint else text)
        self.service_code = service_code
        self.code = code
        self.sf_message = message


class SfGatewayError(PermanentError):
    """A gateway result code (``apiResultCode``) that retrying will not fix."""

    def __init__(self, service_code: str, code: str, message: str) -> None:
        super().__init__(f"SF {service_code} was refused by the gateway: {code} {message}".strip())
        self.service_code = service_code
        self.code = code


class SfClient:
    """Calls SF Open Platform services for one customer (``partnerID`` + checkword)."""

    def __init__(
        self,
        api_url: str,
        partner_id: str,
        checkword: str,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        calls_per_second: float = DEFAULT_CALLS_PER_SECOND,
    ) -> None:
        self.api_url = api_url
        self.partner_id = partner_id
        self.checkword = checkword
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))
        self.throttle = Throttle.for_account(f"sf:{partner_id}", calls_per_second)

    def __enter__(self) -> SfClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def call(self, service_code: str, msg_data: dict[str, Any]) -> dict[str, Any]:
        """Call ``service_code``; return the business result's ``msgData`` (or the cloud-print ``obj``).

        Gateway throttling, 5xx answers, timeouts and unreadable bodies are tried
        again a few times after a short pause, then raised as ``RetryableError``.
        A refused request is raised at once: ``SfBusinessError`` / ``SfGatewayError``
        (both ``PermanentError``). Only call services that are safe to repeat here:
        a repeated create-order answers 8016, which the plugin resolves.
        """
        return with_retries(lambda: self.call_once(service_code, msg_data))

    def call_once(self, service_code: str, msg_data: dict[str, Any]) -> dict[str, Any]:
        self.throttle.wait()
        body = compact_json(msg_data)
        timestamp = str(int(time.time() * 1000))  # epoch milliseconds, as the Java SDK sends
        form = {
            "partnerID": self.partner_id,
            "requestID": str(uuid.uuid4()),
            "serviceCode": service_code,
            "timestamp": timestamp,
            "msgDigest": msg_digest(body, timestamp, self.checkword),
            "msgData": body,
        }
        try:
            response = self.http.post(self.api_url, data=form)
        except httpx.TimeoutException as exc:
            raise RetryableError(f"SF {service_code} timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"SF {service_code} could not be reached: {exc}") from exc
        return read_result(service_code, read_gateway(service_code, response))

    def download(self, url: str, token: str) -> bytes:
        """GET a cloud-print file: a temporary link that wants the token in ``X-Auth-Token``."""
        try:
            response = self.http.get(url, headers={"X-Auth-Token": token})
        except httpx.TimeoutException as exc:
            raise RetryableError(f"SF label download timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"SF label download failed: {exc}") from exc
        if response.status_code != 200:
            # The link expires soon after printing (README "Label"); the next try prints
            # again and gets a fresh link and token, so every refusal is worth a retry.
            raise RetryableError(f"SF label download answered HTTP {response.status_code}")
        return response.content


def read_gateway(service_code: str, response: httpx.Response) -> Any:
    """The gateway envelope → the parsed ``apiResultData`` (README "Endpoints and call shape")."""
    if response.status_code == 429 or response.status_code >= 500:
        # The gateway itself always answers 200; these come from the proxy in front of it.
        raise RetryableError(f"SF {service_code} answered HTTP {response.status_code}")
    if response.status_code != 200:
        raise PermanentError(f"SF {service_code} answered HTTP {response.status_code}: {response.text[:200]}")
    try:
        envelope = response.json()
    except ValueError as exc:
        raise RetryableError(f"SF {service_code} returned a body that is not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise RetryableError(f"SF {service_code} returned JSON that is not an object")
    code = str(envelope.get("apiResultCode") or "")
    message = str(envelope.get("apiErrorMsg") or "")
    if code != GATEWAY_OK:
        if code in RETRYABLE_GATEWAY_CODES:
            raise RetryableError(f"SF {service_code}: {code} {message}: {RETRYABLE_GATEWAY_CODES[code]}".strip())
        raise SfGatewayError(service_code, code, f"{message}: {PERMANENT_GATEWAY_CODES.get(code, 'unknown code')}")
    data = envelope.get("apiResultData")
    # apiResultData is a JSON-encoded string that must be parsed a second time.
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise RetryableError(f"SF {service_code} returned an apiResultData that is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RetryableError(f"SF {service_code} returned no apiResultData object")
    return data


def read_result(service_code: str, result: dict[str, Any]) -> dict[str, Any]:
    """The business result → its ``msgData`` (cloud print: ``obj``), or ``SfBusinessError``."""
    if result.get("success") is not True:
        code = str(result.get("errorCode") or "")
        # Cloud print says errorMessage where every other API says errorMsg.
        message = str(result.get("errorMsg") or result.get("errorMessage") or "")
        if not code and not message:
            raise PayloadError(f"SF {service_code} answered success={result.get('success')!r} with no error code")
        raise SfBusinessError(service_code, code, message, BUSINESS_HINTS.get(code, ""))
    payload = result.get("obj", result.get("msgData"))
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise PayloadError(f"SF {service_code} returned a msgData that is not an object")
    return payload


# What to do about the business errors the README lists (EXP_RECE_CREATE_ORDER table).
BUSINESS_HINTS = {
    "1010": "The sender's address is missing: complete the shipping location's address",
    "1011": "The sender's contact name is missing: give the shipping location a contact name",
    "1012": "The sender's phone is missing: give the shipping location a phone number",
    "1014": "The recipient's address is missing: complete the order's shipping address",
    "1015": "The recipient's name is missing: add a name to the order's shipping address",
    "1016": "The recipient's phone is missing: add a phone number to the order's shipping address",
    "1023": "A cargo name is missing: give every product in the shipment a name",
    "6126": "The monthlyCard setting must be SF's 10-digit monthly account number (月结卡号)",
    "8119": "The monthlyCard is unknown or expired: check the monthlyCard setting with SF",
    "8114": "The monthlyCard may not ship: ask SF to enable it",
    "8057": "This SF product (expressTypeId) is not known: choose another SF service",
    "8067": "More than 307 parcels in one order: split the shipment",
    "8117": "More than 307 parcels in one order: split the shipment",
    "8096": "The pickup time is outside SF's business hours: choose another pickup time",
    "8177": "SF is controlling capacity for the peak season: try later or use another carrier",
    "20035": "The goods are prohibited for SF: ship them with another carrier",
    "20012": "Scheduled delivery is limited to 300 kg: split the shipment",
    "8018": "SF has no order with this orderId",
    "6150": "SF has no order with this orderId",
}
