"""Structured logging set-up: human-readable on a terminal, JSON lines on request.

Every line, ours or a library's, passes :func:`scrub` before it is written: the value of a field
named like a secret is replaced, and so are the credentials of an ``Authorization`` header's
Basic or Bearer scheme and of a URL's ``user:password@`` wherever they occur in text. chargegrid's
own code logs no secret; this is the net under libraries and exception messages.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "***"

#: Field names whose values are never written (lower-case substrings).
_SECRET_FIELDS = ("password", "secret", "authorization", "private_key", "api_key", "passphrase")
_SECRET_NAMES = frozenset({"token", "admin_token", "api_token", "key_pem", "authorization_key"})
# The schemes as HTTP clients write them: "basic charging" in a sentence is no credential.
_CREDENTIALS = re.compile(r"\b(Basic|BASIC|Bearer|bearer|BEARER)\s+[A-Za-z0-9._~+/=-]{4,}")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+):[^\s@/]+@")


def scrub_text(text: str) -> str:
    """``text`` with Basic / Bearer credentials and URL passwords replaced."""
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)
    return _CREDENTIALS.sub(rf"\1 {REDACTED}", text)


def scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: secrets out of every field of the line."""
    for name, value in event.items():
        lowered = name.lower()
        if lowered in _SECRET_NAMES or any(s in lowered for s in _SECRET_FIELDS):
            event[name] = REDACTED
        elif isinstance(value, str):
            event[name] = scrub_text(value)
    return event


def configure(
    level: str = "info",
    fmt: str = "console",
    *,
    stream: TextIO | None = None,
    cache_loggers: bool = True,
) -> None:
    """Route structlog and the standard library's logging to ``stream`` (stderr) in one format.

    ``cache_loggers=False`` lets a later ``structlog.configure`` (a test's) reach every logger."""
    stream = stream or sys.stderr
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # filter_by_level first: a line below the level costs a check, not the processors
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=cache_loggers,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                scrub,  # after the traceback became text: it is scrubbed too
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # picows logs every refused handshake at INFO; our own line says why.
    logging.getLogger("picows").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin at start
    # uvicorn's start and stop lines say what chargegrid's own "ready" line says.
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
