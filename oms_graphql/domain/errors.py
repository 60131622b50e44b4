"""Typed outcomes of business rules; the API maps them to ``UserError``s."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one input field; ``field`` is the path inside the input."""

    field: tuple[str, ...]
    message: str
    code: str = "INVALID"


class DomainError(Exception):
    """A business rule said no. Nothing was written."""

    code = "INVALID"

    def __init__(self, message: str, field: tuple[str, ...] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    @property
    def problems(self) -> list[FieldProblem]:
        return [FieldProblem(self.field or (), self.message, self.code)]


class InvalidInput(DomainError):
    """One or more input fields are wrong; every problem is listed."""

    def __init__(self, problems: list[FieldProblem]):
        super().__init__("; ".join(p.message for p in problems), problems[0].field if problems else None)
        self._problems = problems

    @property
    def problems(self) -> list[FieldProblem]:
        return self._problems


class NotFound(DomainError):
    code = "NOT_FOUND"


class Duplicate(DomainError):
    code = "DUPLICATE"


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"


class InsufficientStock(DomainError):
    code = "INSUFFICIENT_STOCK"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Problems:
    """Collects field problems, then raises them together."""

    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, field: tuple[str | int, ...], message: str, code: str = "INVALID") -> None:
        self.items.append(FieldProblem(tuple(str(part) for part in field), message, code))

    def text(self, field: tuple[str | int, ...], value: str | None, max_length: int, required: bool = False):
        if value is None or (required and not value.strip()):
            if required:
                self.add(field, f"{field[-1]} is required.", "REQUIRED")
            return
        if len(value) > max_length:
            self.add(field, f"{field[-1]} is longer than {max_length} characters.", "TOO_LONG")

    def positive(self, field: tuple[str | int, ...], value: int | None) -> None:
        if value is not None and value <= 0:
            self.add(field, f"{field[-1]} must be greater than zero (got {value}).", "NOT_POSITIVE")

    def not_negative(self, field: tuple[str | int, ...], value: int | float | Decimal | None) -> None:
        if value is not None and value < 0:
            self.add(field, f"{field[-1]} must not be negative (got {value}).", "NEGATIVE")

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidInput(self.items)
