"""Structured logs (structlog): key=value for people, JSON lines with OMS_LOG_JSON=1."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from oms_graphql.config import Settings

_SECRET_KEYS = ("secret", "token", "password", "authorization", "session", "signature")


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(word in key.lower() for word in _SECRET_KEYS):
            event[key] = "***"
    return event


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    renderer = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # Alembic announces each of its built-in plugins, and its "Context impl" whenever the
    # schema revision is read (every command's check): noise before a one-line answer.
    # `oms migrate` and `oms reset` show the steps they run with show_migration_steps().
    for name in ("alembic.runtime.plugins", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def show_migration_steps(settings: Settings) -> None:
    """Log each migration Alembic runs ("Running upgrade 0002 -> 0003, ...")."""
    logging.getLogger("alembic.runtime.migration").setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
