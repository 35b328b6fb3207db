"""OSCP 2.0 HTTP headers (OSCP 2.0 FINAL 2020-10-12, chapter "Transport"), as pure functions.

Every request carries ``Authorization: Token <token>`` (the token the receiver gave the sender
in its Register) and a fresh ``X-Request-ID``; a message that answers another (HandshakeAcknowledge
to Handshake, Register to Register) carries the request's id as ``X-Correlation-ID``. A message
split over several requests carries ``X-Segment-Index`` (from 1) and ``X-Segment-Count``.

The dict :func:`request_headers` returns holds the token in clear: log :func:`redacted` of it,
never the dict itself. :class:`Incoming` keeps the token as a :class:`Token`, redacted in reprs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from chargegrid.protocols.oscp.datatypes import Token
from chargegrid.protocols.oscp.errors import BAD_REQUEST, UNAUTHORIZED, OscpError

__all__ = [
    "AUTHORIZATION",
    "CORRELATION_ID",
    "REQUEST_ID",
    "SEGMENT_COUNT",
    "SEGMENT_INDEX",
    "Incoming",
    "parse_authorization",
    "parse_headers",
    "redacted",
    "request_headers",
]

AUTHORIZATION = "Authorization"
REQUEST_ID = "X-Request-ID"
CORRELATION_ID = "X-Correlation-ID"
SEGMENT_INDEX = "X-Segment-Index"
SEGMENT_COUNT = "X-Segment-Count"
SCHEME = "Token"
_VISIBLE = re.compile(r"[!-~]+")  # RFC 9110 token68 and ids: visible ASCII, no spaces
_DIGITS = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class Incoming:
    """The OSCP headers of a request received: who (by token) and which request."""

    token: Token
    request_id: str
    correlation_id: str | None = None
    segment: tuple[int, int] | None = None  # (X-Segment-Index, X-Segment-Count)


def request_headers(
    token: Token,
    *,
    correlation_id: str | None = None,
    request_id: str | None = None,
    segment: tuple[int, int] | None = None,
) -> dict[str, str]:
    """The headers of a request to a peer: its ``token``, a new UUID as the request id unless
    ``request_id`` is given, and the id of the request this one answers, if any."""
    value = token.reveal()
    if not _VISIBLE.fullmatch(value):
        raise OscpError("a token for a header is visible ASCII without spaces", UNAUTHORIZED)
    headers = {
        AUTHORIZATION: f"{SCHEME} {value}",
        "Content-Type": "application/json",
        REQUEST_ID: request_id if request_id is not None else str(uuid.uuid4()),
    }
    if correlation_id is not None:
        headers[CORRELATION_ID] = correlation_id
    if segment is not None:
        index, count = segment
        if not 1 <= index <= count:
            raise ValueError(f"segment {index} of {count}")
        headers[SEGMENT_INDEX], headers[SEGMENT_COUNT] = str(index), str(count)
    return headers


def redacted(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` fit for a log: the credential of Authorization replaced."""
    return {
        k: (v.split(" ", 1)[0] + " ***" if k.lower() == "authorization" else v)
        for k, v in headers.items()
    }


def parse_authorization(value: str | None) -> Token:
    """The token of an ``Authorization: Token <token>`` header; :class:`OscpError` (401)
    when it is missing, empty, or of another scheme (the scheme is case-insensitive, RFC 9110
    11.1)."""
    if value is None:
        raise OscpError("no Authorization header", UNAUTHORIZED)
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != SCHEME.lower():
        raise OscpError(f"the Authorization scheme is not {SCHEME}", UNAUTHORIZED)
    credential = credential.strip(" ")
    if not _VISIBLE.fullmatch(credential):
        raise OscpError("the Authorization token is empty or malformed", UNAUTHORIZED)
    return Token(credential)


def parse_headers(headers: Mapping[str, str]) -> Incoming:
    """The OSCP headers of a request received (names case-insensitive): the token (401 when
    unusable), ``X-Request-ID`` (required, 400), ``X-Correlation-ID`` and the segment (400
    when only one of its two headers is there or they are not 1 <= index <= count)."""
    lower = {k.lower(): v for k, v in headers.items()}
    token = parse_authorization(lower.get(AUTHORIZATION.lower()))
    request_id = _identifier(lower, REQUEST_ID)
    if request_id is None:
        raise OscpError(f"no {REQUEST_ID} header", BAD_REQUEST)
    correlation_id = _identifier(lower, CORRELATION_ID)
    index, count = lower.get(SEGMENT_INDEX.lower()), lower.get(SEGMENT_COUNT.lower())
    segment = None
    if index is not None or count is not None:
        if index is None or count is None:
            raise OscpError(f"{SEGMENT_INDEX} and {SEGMENT_COUNT} go together", BAD_REQUEST)
        if not (_DIGITS.fullmatch(index.strip()) and _DIGITS.fullmatch(count.strip())):
            raise OscpError("segment headers are not whole numbers", BAD_REQUEST)
        segment = (int(index), int(count))
        if not 1 <= segment[0] <= segment[1]:
            raise OscpError("segment index not between 1 and the segment count", BAD_REQUEST)
    return Incoming(token, request_id, correlation_id, segment)


def _identifier(lower: Mapping[str, str], name: str) -> str | None:
    value = lower.get(name.lower())
    if value is None:
        return None
    value = value.strip()
    if not _VISIBLE.fullmatch(value):
        raise OscpError(f"{name} is empty or not visible ASCII", BAD_REQUEST)
    return value
