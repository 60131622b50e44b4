"""The fast paths for plain fields answer exactly what strawberry and graphql-core answer:
the same data, the same nulls, the same errors at the same paths."""

from __future__ import annotations

import asyncio
import enum

import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from oms_graphql.schema.fast_fields import PlainLeavesExecutor, call_argument_free_methods


@strawberry.enum
class Colour(enum.Enum):
    RED = "RED"


@strawberry.type
class Item:
    name: str
    note: str | None
    colour: Colour
    count: int

    @strawberry.field
    def label(self) -> str:
        return f"{self.name}:{self.count}"

    @strawberry.field
    def twice(self, info: strawberry.Info) -> int:
        return self.count * info.context["factor"]

    @strawberry.field
    async def later(self) -> str:
        return self.name.upper()


def _item(**changes) -> Item:
    values = {"name": "a", "note": None, "colour": Colour.RED, "count": 1} | changes
    return Item(**values)


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        broken_enum = _item(name="e")
        broken_enum.colour = "BLUE"  # type: ignore[assignment]
        missing = _item(name="m")
        missing.name = None  # type: ignore[assignment]
        wrong = _item(name="w")
        wrong.count = "many"  # type: ignore[assignment]
        return [_item(note="n"), broken_enum, missing, wrong, _item(name="b", count=2)]


QUERY = "{ items { name note colour count label twice later alias: name } }"


def _run(executor: type) -> dict:
    schema = strawberry.Schema(query=Query, execution_context_class=executor)
    if executor is PlainLeavesExecutor:
        call_argument_free_methods(schema._schema)
    result = asyncio.run(schema.execute(QUERY, context_value={"factor": 3}))
    errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or [])
    return {"data": result.data, "errors": errors}


def test_plain_leaves_and_argument_free_methods_answer_as_strawberry_does():
    ours, theirs = _run(PlainLeavesExecutor), _run(StrawberryGraphQLCoreExecutionContext)

    assert ours == theirs
    assert ours["data"]["items"][0] == {
        "name": "a",
        "note": "n",
        "colour": "RED",
        "count": 1,
        "label": "a:1",
        "twice": 3,
        "later": "A",
        "alias": "a",
    }
    assert ours["data"]["items"][1:4] == [None, None, None]  # each broken item is nulled, with its error
    assert len(ours["errors"]) >= 3
