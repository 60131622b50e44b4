"""Structured logs (structlog): key=value for people, JSON lines with OMS_LOG_JSON=1.

No line shows a secret: see ``oms_graphql/redaction.py`` (masked by key and by value).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

from oms_graphql import redaction
from oms_graphql.config import Settings

# Loggers that announce every outbound request with its full URL at INFO; a marketplace's
# credentials can travel in the query string (Taobao's ``session``), so they speak from WARNING.
_CHATTY_HTTP_LOGGERS = ("httpx", "httpcore")


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog: mask values under credential keys, and known secrets in every other value."""
    for key in list(event):
        if redaction.is_secret_key(key):
            event[key] = redaction.MASK
        elif isinstance(event[key], str):
            event[key] = redaction.redact(event[key])
        elif isinstance(event[key], (dict, list, tuple)):
            event[key] = redaction.redact_value(event[key])
        elif key != "exc_info" and not isinstance(event[key], (int, float, bool, type(None))):
            event[key] = redaction.redact(str(event[key]))
    return event


def _redacting_record_factory(make_record: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """Standard-library records (httpx, dramatiq, uvicorn, alembic) masked when they are made,
    so every handler (a file, the console, a test's capture) prints the masked text."""

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logging's to report, not ours
            return record
        masked = redaction.redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redaction.redact(logging.Formatter().formatException(record.exc_info))
        return record

    make.redacting = True  # type: ignore[attr-defined]
    return make


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
            structlog.processors.format_exc_info,  # before _redact: a traceback may quote a secret
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(logging.getLogRecordFactory(), "redacting", False):
        logging.setLogRecordFactory(_redacting_record_factory(logging.getLogRecordFactory()))
    for name in _CHATTY_HTTP_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # Alembic announces each of its built-in plugins, and its "Context impl" whenever the
    # schema revision is read (every command's check): noise before a one-line answer.
    # `oms migrate` and `oms reset` show the steps they run with show_migration_steps().
    for name in ("alembic.runtime.plugins", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def show_migration_steps(settings: Settings) -> None:
    """Log each migration Alembic runs ("Running upgrade 0002 -> 0003, ...")."""
    logging.getLogger("alembic.runtime.migration").setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
