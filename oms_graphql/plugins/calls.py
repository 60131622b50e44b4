"""Helpers for a plugin's outbound calls: a shared rate limit and quick retries.

Plugins may use these (they are part of the plugin contract, like ``contract.py``):

* ``Throttle``: at most N calls per second to one account, shared by every client
  of that account in the process (a job makes a new client per hook call).
* ``with_retries``: try a call again after a short pause when it raised
  ``RetryableError`` (an HTTP 502 from the gateway's proxy, a timeout, a
  throttling answer with a short ban). A pull resumes at its page after a
  failure, but the job's own retries wait long; a gateway that fails one call in
  a few must not cost a minute each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from oms_graphql.plugins.contract import RetryableError

T = TypeVar("T")

# Pauses before the second, third and fourth try; a throttling answer's own
# retry_after wins when it is given and short enough to wait for here.
BACKOFF_SECONDS = (0.2, 0.5, 1.5)
LONGEST_INLINE_WAIT = 10.0


class Throttle:
    """Spaces calls ``1 / calls_per_second`` apart, across threads."""

    _shared: dict[str, Throttle] = {}
    _shared_lock = threading.Lock()

    def __init__(self, calls_per_second: float) -> None:
        self.interval = 1.0 / calls_per_second if calls_per_second > 0 else 0.0
        self.lock = threading.Lock()
        self.next_at = 0.0

    @classmethod
    def for_account(cls, key: str, calls_per_second: float) -> Throttle:
        """The one throttle of ``key`` (e.g. ``"taobao:<app key>"``) in this process."""
        with cls._shared_lock:
            throttle = cls._shared.get(key)
            if throttle is None or throttle.interval != (1.0 / calls_per_second if calls_per_second > 0 else 0.0):
                throttle = cls._shared[key] = cls(calls_per_second)
            return throttle

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            time.sleep(start - now)


def with_retries(call: Callable[[], T], backoff: tuple[float, ...] = BACKOFF_SECONDS) -> T:
    """``call()``, tried again after each pause of ``backoff`` while it raises ``RetryableError``;
    the last error is raised as it is (the job then retries later)."""
    for pause in (*backoff, None):
        try:
            return call()
        except RetryableError as error:
            wait = error.retry_after if error.retry_after is not None else pause
            if pause is None or wait is None or wait > LONGEST_INLINE_WAIT:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")
