"""Every report as CSV: ``GET /reports/{field}.csv?from=…&to=…`` and ``oms report NAME --csv``.

The CSV is the GraphQL answer itself: the route turns the query string into the field's
arguments (names as in the schema: ``from``, ``to``, ``interval``, ``groupBy``,
``horizonDays``, ``skus``…, and the filter's ``channelCodes``, ``skus``, ``categories``,
``regions``, ``locationCodes``; lists comma-separated or repeated), runs
``reports { field(…) { every leaf } }`` through the schema with the caller's token, and
writes one column per leaf (``revenue.amount``); a report that answers an object of lists
(topProducts) gets a row per listed item and a ``list`` column. Same arguments, permission checks and
columns as GraphQL, by construction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from typing import Any

import strawberry
from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLType,
    get_named_type,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from oms_graphql.config import Settings
from oms_graphql.db.engine import Database
from oms_graphql.schema.context import Context


class BadReportRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def report_fields(schema: strawberry.Schema) -> dict[str, GraphQLField]:
    reports = schema._schema.get_type("Reports")
    assert isinstance(reports, GraphQLObjectType)
    return dict(reports.fields)


def _leaves(kind: GraphQLType, prefix: str = "") -> tuple[str, list[str]]:
    """(selection set, column names) of every leaf under ``kind``."""
    named = get_named_type(kind)
    if not isinstance(named, GraphQLObjectType):
        return "", [prefix]
    selections, columns = [], []
    for name, field in named.fields.items():
        if field.args and any(isinstance(arg.type, GraphQLNonNull) for arg in field.args.values()):
            continue
        inner, leaf_columns = _leaves(field.type, f"{prefix}.{name}" if prefix else name)
        selections.append(f"{name} {inner}".strip())
        columns += leaf_columns
    return "{ " + " ".join(selections) + " }", columns


def _value(kind: GraphQLType, raw: list[str], name: str) -> Any:
    if isinstance(kind, GraphQLNonNull):
        return _value(kind.of_type, raw, name)
    if isinstance(kind, GraphQLList):
        return [part.strip() for item in raw for part in item.split(",") if part.strip()]
    value = raw[-1]
    if getattr(kind, "name", None) == "Int":
        try:
            return int(value)
        except ValueError:
            raise BadReportRequest(f"{name} must be a whole number, not {value!r}.") from None
    return value


def build_request(
    schema: strawberry.Schema, field_name: str, params: Mapping[str, list[str]]
) -> tuple[str, dict[str, Any], list[str]]:
    """(document, variables, columns) for ``reports { field_name(…) }`` from query parameters."""
    fields = report_fields(schema)
    field = fields.get(field_name)
    if field is None:
        raise BadReportRequest(f"No report {field_name!r}; there are {', '.join(sorted(fields))}.", 404)
    declared, passed, variables = [], [], {}
    for name, argument in field.args.items():
        named = get_named_type(argument.type)
        if isinstance(named, GraphQLInputObjectType):
            value = {
                inner: _value(item.type, params[inner], inner)
                for inner, item in named.fields.items()
                if inner in params
            }
            if not value:
                continue
        elif name in params:
            value = _value(argument.type, params[name], name)
        elif isinstance(argument.type, GraphQLNonNull) and argument.default_value is None:
            raise BadReportRequest(f"Give {name}= (an ISO-8601 time, e.g. 2026-01-01T00:00:00+08:00).")
        else:
            continue
        declared.append(f"${name}: {argument.type}")
        passed.append(f"{name}: ${name}")
        variables[name] = value
    selection, columns = _leaves(field.type)
    arguments = f"({', '.join(passed)})" if passed else ""
    head = f"({', '.join(declared)})" if declared else ""
    return f"query Report{head} {{ reports {{ {field_name}{arguments} {selection} }} }}", variables, columns


def _pick(value: Any, parts: list[str]) -> Any:
    """The leaf at ``parts`` under ``value``; under a list, that of each item (a list)."""
    if not parts:
        return value
    if isinstance(value, list):
        return [_pick(item, parts) for item in value]
    return _pick(value.get(parts[0]), parts[1:]) if isinstance(value, dict) else None


def _text(value: Any) -> Any:
    if isinstance(value, list):  # a list's leaves in one cell: "10.00;5.00"
        return ";".join(str(_text(item)) for item in value)
    return "" if value is None else value


def _cell(row: Any, column: str) -> Any:
    return _text(_pick(row, column.split(".")))


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row, column) for column in columns])
    return out.getvalue()


def flattened(columns: list[str], answer: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """An object of lists (topProducts: ``top`` and ``rising``) as one row per listed item, its
    list's name in a ``list`` column and the object's other fields repeated on every row."""
    lists = [name for name, value in answer.items() if isinstance(value, list)]
    plain = [column for column in columns if column.split(".", 1)[0] not in lists]
    inner = list(dict.fromkeys(c.split(".", 1)[1] for c in columns if c.split(".", 1)[0] in lists and "." in c))
    rows = [
        {**{name: answer[name] for name in answer if name not in lists}, **item, "list": name}
        for name in lists
        for item in answer[name]
    ]
    return [*plain, "list", *inner], rows


async def run_report(
    schema: strawberry.Schema, field_name: str, params: Mapping[str, list[str]], context: Context
) -> str:
    """The report as CSV text; BadReportRequest with the status to answer otherwise."""
    document, variables, columns = build_request(schema, field_name, params)
    result = await schema.execute(document, variable_values=variables, context_value=context)
    if result.errors:
        error = result.errors[0]
        code = (error.extensions or {}).get("code")
        status = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403}.get(str(code), 400)
        raise BadReportRequest(error.message, status)
    assert result.data is not None
    answer = result.data["reports"][field_name]
    if isinstance(answer, dict):
        columns, answer = flattened(columns, answer)
    return to_csv(columns, answer)


def csv_route(database: Database, settings: Settings, schema_of: Callable[[], strawberry.Schema]) -> Route:
    async def report(request: Request) -> Response:
        field_name = request.path_params["field"]
        params = {key: request.query_params.getlist(key) for key in request.query_params}
        context = Context(database=database, request=request, settings=settings)
        try:
            text = await run_report(schema_of(), field_name, params, context)
        except BadReportRequest as bad:
            return JSONResponse({"error": bad.message}, status_code=bad.status)
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{field_name}.csv"'},
        )

    return Route("/reports/{field}.csv", report, methods=["GET"])
