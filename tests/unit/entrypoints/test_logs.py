"""The log scrubber: the net under every line, ours and libraries'."""

from __future__ import annotations

import io
import json
import logging

import structlog

from chargegrid.entrypoints import logs


def test_fields_named_like_secrets_are_replaced() -> None:
    line = logs.scrub(
        None,
        "info",
        {
            "event": "x",
            "password": "p4ss",
            "new_password": "p4ss",
            "admin_token": "t0k",
            "Authorization": "Basic abc",
            "webhook_secret": "s",
            "token_id": 7,
            "station_id": "CS-1",
        },
    )
    assert line == {
        "event": "x",
        "password": "***",
        "new_password": "***",
        "admin_token": "***",
        "Authorization": "***",
        "webhook_secret": "***",
        "token_id": 7,
        "station_id": "CS-1",
    }


def test_credentials_inside_text_are_replaced() -> None:
    text = (
        "GET with Authorization: Basic Q1MtMTpzZWNyZXQ= then bearer abc.def-ghi "
        "to postgresql+asyncpg://app:hunter2@db:5432/cg and https://u:p@host/x"
    )
    assert logs.scrub_text(text) == (
        "GET with Authorization: Basic *** then bearer *** "
        "to postgresql+asyncpg://app:***@db:5432/cg and https://u:***@host/x"
    )
    assert logs.scrub_text("basic charging, no secret") == "basic charging, no secret"


def test_a_library_line_and_a_traceback_are_scrubbed() -> None:
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    stream = io.StringIO()
    try:
        logs.configure("info", "json", stream=stream, cache_loggers=False)
        try:
            raise ValueError("cannot reach postgresql://cg:topsecret@db/cg")
        except ValueError:
            logging.getLogger("some.library").exception("failed with Bearer abcdefgh")
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        structlog.reset_defaults()
    line = json.loads(stream.getvalue())
    assert line["logger"] == "some.library"
    assert "topsecret" not in stream.getvalue() and "abcdefgh" not in stream.getvalue()
    assert "postgresql://cg:***@db/cg" in line["exception"]
