"""The webhook call: JSON body, optional HMAC-SHA256 signature, typed failures."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from oms_graphql.plugins.contract import PermanentError, RetryableError

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SIGNATURE_HEADER = "X-OMS-Signature"


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>`` of the body, keyed by the shared secret (as GitHub signs its webhooks)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_json(url: str, payload: dict[str, Any], secret: str | None = None) -> None:
    """POST once. 2xx: done; 408/429/5xx or no answer: RetryableError; other 4xx: PermanentError."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"content-type": "application/json", "user-agent": "oms-graphql-notify-webhook/0.1"}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as error:
        raise RetryableError(f"webhook {url} did not answer: {error}") from error
    if response.is_success:
        return
    retry_after = response.headers.get("retry-after")
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise RetryableError(
            f"webhook {url} answered {response.status_code}",
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    raise PermanentError(f"webhook {url} refused the alert with {response.status_code}: {response.text[:200]}")
