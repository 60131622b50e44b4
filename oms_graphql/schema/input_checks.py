"""Checks on a request's variables before anything runs, for every field at once.

JSON lets a client send what no column can hold: a lone UTF-16 surrogate
(``"\\ud800"``, which PostgreSQL text and UTF-8 cannot encode), the NUL
character (``"\\u0000"``, which PostgreSQL text cannot hold), ``NaN`` and
``Infinity`` (Python's JSON reader accepts them; no JSON answer can carry them
back), and integers beyond what a double keeps exactly. Such a variable is
refused as a GraphQL error (``extensions.code`` ``BAD_USER_INPUT``) naming where
it is, before any resolver sees it. Literals in the document need no check:
the GraphQL lexer already refuses lone surrogates there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

# The largest integer every JSON reader (a browser's included) keeps exactly.
MAX_SAFE_INTEGER = 2**53 - 1
BAD_USER_INPUT = "BAD_USER_INPUT"


def _has_lone_surrogate(text: str) -> bool:
    # Python keeps a valid pair sent as "\ud83d\ude00" as one character, so any code point
    # left in the surrogate range is a lone half.
    return any("\ud800" <= char <= "\udfff" for char in text)


def _where(path: tuple[str | int, ...]) -> str:
    text = "$"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (part if text == "$" else f".{part}")
    return text


def _values(variables: Any) -> Iterator[tuple[tuple[str | int, ...], Any, bool]]:
    """Every value and key in ``variables`` with its path: (path, value, is a key); no recursion."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), variables)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                yield (*path, str(key)), key, True
                stack.append(((*path, str(key)), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
        else:
            yield path, value, False


def variable_problem(variables: Any) -> str | None:
    """Why these variables cannot be taken, or None."""
    for path, value, is_key in _values(variables or {}):
        where = _where(path)
        if isinstance(value, str) and _has_lone_surrogate(value):
            what = "The key" if is_key else "The text"
            return (
                f"{what} at {where} holds a lone UTF-16 surrogate, which is not valid Unicode. "
                "Send characters beyond U+FFFF as a surrogate pair, or as UTF-8."
            )
        if isinstance(value, str) and "\x00" in value:
            what = "The key" if is_key else "The text"
            return f"{what} at {where} holds the NUL character (U+0000), which no text can be stored with. Remove it."
        if isinstance(value, float) and not math.isfinite(value):
            return f"The number at {where} is NaN or infinite. Send a finite number."
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
            return f"The number at {where} is too large (at most {MAX_SAFE_INTEGER} either side of zero)."
    return None


class VariablesCheck(SchemaExtension):
    """Refuse a request whose variables hold text or numbers no field can take."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if not context.pre_execution_errors and (problem := variable_problem(context.variables)):
            # Set before validation: strawberry then skips validating and answers with this.
            context.pre_execution_errors = [GraphQLError(problem, extensions={"code": BAD_USER_INPUT})]
        yield
