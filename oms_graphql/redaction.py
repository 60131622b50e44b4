"""Secrets never printed: masked by key and by value wherever text leaves the process.

Two rules, applied to every log line (``oms_graphql/logs.py``), every GraphQL error
and userError, and every error text kept in the database (a channel's
``lastError``, an inbound message's error, an alert, a parked shipment):

- **by key**: a value under a key that names a credential (``appSecret``,
  ``session``, ``access_token``, ``Authorization``, ``sign``…) is replaced by
  ``***``, in a mapping, in a URL's query string, and in text that shows a
  mapping (``{'appSecret': '…'}``, ``"session": "…"``, ``session=…``);
- **by value**: every secret setting of a channel or carrier this process has
  seen (checked, stored, read back: ``plugin_settings`` remembers them) is
  replaced by ``***`` wherever it appears, whatever the text around it, and so
  are the secrets a GraphQL request itself carries (``request_secrets``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from threading import Lock
from typing import Any

MASK = "***"
# Parts of a key that say its value is a credential (compared in lower case).
SECRET_WORDS = (
    "secret",
    "token",
    "password",
    "passwd",
    "authorization",
    "session",
    "signature",
    "credential",
    "cookie",
    "key",
)
# Keys that are exactly these are credentials too ("sign" would otherwise match "signMethod").
SECRET_KEYS = frozenset({"sign", "auth", "pwd", "checkword", "apikey"})
# Shorter values are not masked by value: "abc" would garble every line it appears in.
MIN_SECRET_LENGTH = 6
_MAX_REMEMBERED = 5000

_remembered: OrderedDict[str, None] = OrderedDict()
_lock = Lock()
_request_secrets: ContextVar[tuple[str, ...]] = ContextVar("request_secrets", default=())

# Every repetition is bounded, so masking takes time linear in the text (a label's base64 or a
# long traceback must not stall the job that logs it).
# 'appSecret': 'v'  "session": "v"  (a Python repr or JSON; the value in the same quotes)
_QUOTED = re.compile(
    r"""(?P<key>(?P<q>['"])(?P<name>[\w.\-]{1,64})(?P=q)\s{0,3}[:=]\s{0,3})"""
    r"""(?P<quote>['"])(?P<value>(?:\\.|(?!(?P=quote))[^\\]){0,2000})(?P=quote)"""
)
# session=v  access_token=v  (a query string, a form, key=value logs)
_ASSIGNED = re.compile(r"""(?<![\w.\-])(?P<name>[\w.\-]{1,64})=(?P<value>[^&\s'",;)}\]]{1,2000})""")
# scheme://user:password@host (a database or broker URL)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.\-]{0,30}://[^\s:/@]{0,200}:)[^\s@/]{1,200}@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}")


def _mask_quoted(match: re.Match[str]) -> str:
    if not is_secret_key(match["name"]):
        return match[0]
    return f"{match['key']}{match['quote']}{MASK}{match['quote']}"


def _mask_assigned(match: re.Match[str]) -> str:
    return f"{match['name']}={MASK}" if is_secret_key(match["name"]) else match[0]


def is_secret_key(key: object) -> bool:
    """Whether a mapping key or parameter name holds a credential."""
    name = str(key).lower().replace("-", "_")
    return name in SECRET_KEYS or any(word in name for word in SECRET_WORDS)


def remember(values: Iterable[Any]) -> None:
    """Mask these secret values wherever this process prints text from now on."""
    with _lock:
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                _remembered[value] = None
                _remembered.move_to_end(value)
        while len(_remembered) > _MAX_REMEMBERED:
            _remembered.popitem(last=False)


def secrets_in(value: Any) -> list[str]:
    """The string values found under credential keys anywhere in ``value`` (a request's variables)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if is_secret_key(key) and isinstance(inner, str):
                    found.append(inner)
                else:
                    stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return [secret for secret in found if len(secret) >= MIN_SECRET_LENGTH]


@contextmanager
def request_secrets(values: Iterable[str]) -> Iterator[None]:
    """Mask ``values`` too while handling one request (they may not be stored yet)."""
    token = _request_secrets.set(tuple(values))
    try:
        yield
    finally:
        _request_secrets.reset(token)


def _known_values() -> list[str]:
    with _lock:
        values = [*_remembered, *_request_secrets.get()]
    return sorted(set(values), key=len, reverse=True)  # longest first: a secret inside another


def redact(text: str) -> str:
    """``text`` with every known secret value and every value under a credential key masked."""
    if not text:
        return text
    for secret in _known_values():
        if secret in text:
            text = text.replace(secret, MASK)
    text = _QUOTED.sub(_mask_quoted, text)
    text = _ASSIGNED.sub(_mask_assigned, text)
    text = _URL_PASSWORD.sub(lambda match: f"{match['head']}{MASK}@", text)
    return _BEARER.sub(lambda match: f"{match[1]} {MASK}", text)


def redact_value(value: Any) -> Any:
    """A copy of ``value`` (mappings, lists, text) with credentials masked by key and by value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: MASK if is_secret_key(key) else redact_value(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(inner) for inner in value)
    return value


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)
