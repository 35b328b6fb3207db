"""A station's OCPP message log: every frame both ways, paged and searched, or tailed live.

``GET /api/v1/stations/{id}/messages`` pages newest first by cursor (``?limit=``, ``?cursor=``
from the previous page's ``next_cursor``) with filters; ``GET .../messages/stream`` answers
``text/event-stream`` (WHATWG HTML, section 9.2): ``event: message`` with the entry as JSON for
each frame as it is logged (before it is saved, so without an ``id``), a comment every 15 s, and
``event: lagged`` before the stream ends if the client reads too slowly.

404 when the station is neither known nor in the log, or when the log is off
(``--message-log-days 0``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from litestar import get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chargegrid.domain.message_log import LoggedMessage
from chargegrid.entrypoints.api import paging
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import storable
from chargegrid.entrypoints.api.sse import relay
from chargegrid.service.message_log import MessageLog, MessageQuery

_CURSOR = "-id"
_encode = msgspec.json.encode


class MessageOut(msgspec.Struct, kw_only=True):
    """One frame. ``message_type``: CALL (2), CALLRESULT (3), CALLERROR (4), or ``invalid``
    for input that is not an OCPP-J frame; ``action``: the CALL's, or for an answer the action
    of the CALL it answers; ``payload``: the frame's text, cut at 64 KiB when ``truncated``."""

    id: int | None
    station_id: str
    at: datetime
    direction: Literal["in", "out"]
    message_type: Literal["CALL", "CALLRESULT", "CALLERROR", "invalid"]
    unique_id: str | None
    action: str | None
    payload: str
    truncated: bool

    @classmethod
    def of(cls, entry: LoggedMessage) -> MessageOut:
        return cls(
            id=entry.id,
            station_id=entry.station_id,
            at=entry.at,
            direction=entry.direction,
            message_type=entry.message_type,
            unique_id=entry.unique_id,
            action=entry.action,
            payload=entry.payload,
            truncated=entry.truncated,
        )


async def _log_of(ctx: Ctx, station_id: str) -> MessageLog:
    message_log = ctx.message_log
    if message_log is None:
        raise NotFoundException("the OCPP message log is off (--message-log-days 0)")
    if await ctx.store.get_station(station_id) is None and not await message_log.has_station(
        station_id
    ):
        raise NotFoundException(f"no station {station_id!r}")
    return message_log


def _aware(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        found = msgspec.convert(value, datetime)  # strict: RFC 3339 text only
    except msgspec.ValidationError as exc:
        raise ValidationException(f"{name} is not an RFC 3339 time: {exc}") from exc
    if found.tzinfo is None:
        raise ValidationException(f"{name} needs a UTC offset (e.g. 2026-03-01T00:00:00Z)")
    return storable(found).astimezone(UTC)


def _cursor(last_id: int) -> str:
    raw = msgspec.json.encode([_CURSOR, last_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _before(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, last_id = msgspec.json.decode(raw, type=tuple[str, int])
    except (ValueError, msgspec.DecodeError) as exc:
        raise ValidationException(f"invalid cursor: {exc}") from exc
    if made_for != _CURSOR or not 1 <= last_id <= 2**63 - 1:
        raise ValidationException("invalid cursor: not one of this list")
    return last_id


@get("/{station_id:str}/messages", summary="The station's OCPP frames, newest first")
async def list_messages(
    ctx: Ctx,
    station_id: FromPath[str],
    limit: Annotated[int, QueryParameter(ge=1, le=paging.MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, QueryParameter()] = None,
    direction: Annotated[
        Literal["in", "out"] | None,
        QueryParameter(description="in: from the station; out: to it"),
    ] = None,
    message_type: Annotated[
        Literal["CALL", "CALLRESULT", "CALLERROR", "invalid"] | None, QueryParameter()
    ] = None,
    action: Annotated[str | None, QueryParameter(description="e.g. Heartbeat")] = None,
    unique_id: Annotated[str | None, QueryParameter()] = None,
    since: Annotated[
        str | None,
        QueryParameter(format="date-time", description="logged at or after (RFC 3339)"),
    ] = None,
    until: Annotated[
        str | None, QueryParameter(format="date-time", description="logged before (RFC 3339)")
    ] = None,
    q: Annotated[
        str | None,
        QueryParameter(description="text the frame contains (case-insensitive)", max_length=200),
    ] = None,
) -> paging.Page[MessageOut]:
    query = MessageQuery(
        station_id=station_id,
        limit=limit,
        before_id=_before(cursor),
        direction=direction,
        message_type=message_type,
        action=action,
        unique_id=unique_id,
        since=_aware("since", since),
        until=_aware("until", until),
        text=q or None,
    )
    message_log = await _log_of(ctx, station_id)
    found, more = await message_log.page(query)
    last = found[-1].id if found else None
    next_cursor = _cursor(last) if more and last is not None else None
    return paging.Page([MessageOut.of(e) for e in found], next_cursor)


@get(
    "/{station_id:str}/messages/stream",
    summary="Tail the station's OCPP frames live (Server-Sent Events)",
    description="`event: message` with the frame's entry as JSON (`id` null: not yet saved).",
    media_type="text/event-stream",
)
async def stream_messages(ctx: Ctx, station_id: FromPath[str]) -> ServerSentEvent:
    message_log = await _log_of(ctx, station_id)
    return ServerSentEvent(relay(message_log.tail(station_id), _render, name="messages"))


def _render(entry: LoggedMessage) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=_encode(MessageOut.of(entry)).decode(), event="message")


handlers = [list_messages, stream_messages]
