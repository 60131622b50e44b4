"""`oms worker` for the ingestion benchmark, with Amazon's SP-API quotas lifted.

The Amazon plugin paces itself to Amazon's real quotas (getOrders: 1 request a
minute after a burst of 20; getOrderItems: 0.5/s after a burst of 30), which
would make a benchmark of a few thousand Amazon orders take hours against the
fake. This wrapper raises those limits, then runs the ordinary worker
(``oms_graphql.cli.run_worker``); nothing else differs from `oms worker`.
"""

from __future__ import annotations

import sys

from oms_plugin_amazon import client, plugin

_real_limiter = client.rate_limiter


def _bench_limiter(endpoint: str, operation: str, rate: float, burst: int) -> client.RateLimiter:
    return _real_limiter(endpoint, operation, rate=max(rate, 10_000.0), burst=max(burst, 10_000))


client.rate_limiter = _bench_limiter
plugin.rate_limiter = _bench_limiter  # type: ignore[attr-defined]

if __name__ == "__main__":
    from oms_graphql.cli import run_worker

    run_worker(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
