"""Hostile documents in-process (issue 9, finding 1): the depth check on a fragment fan-out,
and the memory the parse/validation caches keep after five distinct large documents, with
strawberry's stock extensions (before) and this project's (after). Prints figures."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time

from graphql import parse, validate
from strawberry.extensions import ParserCache, QueryDepthLimiter, ValidationCache

from oms_graphql.resolvers import schema
from oms_graphql.schema.document_limits import DOCUMENT_CACHE, CachedDocuments, depth_limit_rule


def fan_out(levels: int) -> str:
    fragments = [f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels)]
    return "query { ...F0 }\n" + "\n".join(fragments) + f"\nfragment F{levels} on Query {{ __typename }}"


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def depth_check_seconds(rules: list, levels: int) -> float:
    document = parse(fan_out(levels))
    started = time.perf_counter()
    validate(schema._schema, document, rules)
    return time.perf_counter() - started


async def cache_growth(extension_factories: list, size_mb: int) -> float:
    import strawberry

    @strawberry.type
    class Query:
        ping: str = "pong"

    cached = strawberry.Schema(query=Query, extensions=extension_factories)
    gc.collect()
    before = rss_mb()
    for n in range(5):
        document = f"# {n} " + "z" * (size_mb * 2**20) + "\n{ __typename }"
        await cached.execute(document)
        del document
    gc.collect()
    return rss_mb() - before


def main() -> None:
    for levels in (16, 18, 20):
        old = depth_check_seconds(list(QueryDepthLimiter(max_depth=12).validation_rules), levels)
        new = depth_check_seconds([depth_limit_rule(12)], levels)
        print(f"fan-out of {levels} levels: strawberry QueryDepthLimiter {old:.3f} s, linear rule {new * 1000:.2f} ms")
    stock = [lambda: ParserCache(maxsize=1000), lambda: ValidationCache(maxsize=1000)]
    print(f"5 distinct 20 MB documents, stock caches keep: {asyncio.run(cache_growth(stock, 20)):.0f} MB")
    ours = [type("Bench", (CachedDocuments,), {"max_bytes": 16 * 1024})]
    print(f"5 distinct 20 MB documents, size-bounded cache keeps: {asyncio.run(cache_growth(ours, 20)):.0f} MB")
    print(f"documents in the bounded cache: {len(DOCUMENT_CACHE.sizes())}")


if __name__ == "__main__":
    main()
