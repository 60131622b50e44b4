"""Every error in a GraphQL answer carries ``extensions.code``, so a client can act on it without parsing text.

| code | when |
| --- | --- |
| GRAPHQL_PARSE_FAILED | the document is not GraphQL (or too long) |
| GRAPHQL_VALIDATION_FAILED | it asks for what the schema has not, or is too deep |
| BAD_USER_INPUT | a variable is missing or of the wrong type |
| UNAUTHENTICATED | the token sent does not hold (unknown, revoked, expired, a JWT that fails), |
|  | or none was sent where one is needed |
| FORBIDDEN | the caller's role may not do this |
| a domain code | e.g. PAGE_SIZE, INVALID_CURSOR, NOT_FOUND: a query's argument broke a rule |
| INTERNAL_SERVER_ERROR | our fault; the message says only that it was logged |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, GraphQLSyntaxError
from starlette.websockets import WebSocket
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.types.graphql import OperationType

from oms_graphql.domain.errors import DomainError
from oms_graphql.domain.identities import AuthenticationFailed


def _stamp(error: GraphQLError, code: str) -> None:
    if error.extensions is None:
        error.extensions = {}
    error.extensions.setdefault("code", code)


class SubscriptionsOverWebsocket(SchemaExtension):
    """A subscription sent as a plain HTTP request is refused with a code, not run into an internal error."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        request = getattr(context.context, "request", None)
        if context.operation_type == OperationType.SUBSCRIPTION and not isinstance(request, WebSocket):
            context.result = GraphQLExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        "Subscriptions are served over a websocket on /graphql (graphql-transport-ws), not over HTTP.",
                        extensions={"code": "BAD_REQUEST"},
                    )
                ],
            )
        yield


class ErrorCodes(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            _stamp(error, "GRAPHQL_VALIDATION_FAILED")

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except GraphQLError as failure:
            # A document that does not parse leaves the operation as an exception; strawberry answers it.
            _stamp(
                failure, "GRAPHQL_PARSE_FAILED" if self.execution_context.graphql_document is None else "BAD_REQUEST"
            )
            raise
        result = self.execution_context.result
        if result is None or not getattr(result, "errors", None):
            return
        parsed = self.execution_context.graphql_document is not None
        caller = getattr(self.execution_context.context, "known_caller", None)
        for error in result.errors or ():
            if not parsed:
                _stamp(error, "GRAPHQL_PARSE_FAILED")  # not GraphQL, or over the token limit
            assign_code(error, caller)


def assign_code(error: GraphQLError, caller: Any) -> None:
    """Give ``error`` the code its cause calls for (an error that has one keeps it)."""
    anonymous = caller is None or caller.role is None
    original = error.original_error
    if isinstance(error, GraphQLSyntaxError) or isinstance(original, GraphQLSyntaxError):
        _stamp(error, "GRAPHQL_PARSE_FAILED")
    elif isinstance(original, AuthenticationFailed):
        _stamp(error, "UNAUTHENTICATED")
    elif isinstance(original, DomainError):
        _stamp(error, original.code)
    elif isinstance(original, StrawberryGraphQLError):
        # A permission class said no: with no token that is "sign in", with one it is "not yours".
        _stamp(error, "UNAUTHENTICATED" if anonymous else "FORBIDDEN")
    elif error.path is None:
        _stamp(error, "BAD_USER_INPUT")  # variables that do not fit their types, found before execution
    else:
        _stamp(error, "INTERNAL_SERVER_ERROR")
    if anonymous and (error.extensions or {}).get("code") == "FORBIDDEN":
        error.extensions["code"] = "UNAUTHENTICATED"  # type: ignore[index]


class MaskInternalErrors(MaskErrors):
    """MaskErrors that keeps the code: the client learns it was our fault, and nothing else."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked
