"""The live event stream: Server-Sent Events of the domain events (WHATWG HTML, section 9.2).

``GET /api/v1/events`` answers ``text/event-stream``; each event is sent as ``id: <seq>``,
``event: <type>`` and ``data: <the event as JSON>``. A client that reconnects with
``Last-Event-ID`` (browsers do it by themselves) or ``?after=`` gets what it missed, as long as
the node still keeps it; otherwise the stream starts with an ``event: reset`` telling it to
reload its state from the REST resources. A comment line every 15 s keeps proxies from closing
an idle stream. A client that reads too slowly is cut off (``event: lagged``) rather than
buffered without bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
import structlog
from litestar import get
from litestar.exceptions import ClientException
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chargegrid.domain.events import EVENT_TYPES
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.service.events import Closed, Envelope, Lagged, Subscription

log = structlog.get_logger(__name__)

KEEPALIVE_S = 15.0
_encode = msgspec.json.Encoder(decimal_format="number").encode


def message(envelope: Envelope) -> ServerSentEventMessage:
    event = envelope.event
    return ServerSentEventMessage(
        data=_encode(event).decode(),
        event=event.__struct_config__.tag,  # type: ignore[arg-type]
        id=str(envelope.seq),
    )


@get(
    "/",
    summary="Stream domain events (Server-Sent Events)",
    description=(
        "Event types: " + ", ".join(EVENT_TYPES) + ". Each message carries `id` (resume with "
        "`Last-Event-ID` or `?after=`), `event` (the type) and `data` (the event as JSON)."
    ),
    media_type="text/event-stream",
)
async def stream_events(
    ctx: Ctx,
    types: Annotated[
        str | None, QueryParameter(description="Comma-separated event types to send")
    ] = None,
    station: Annotated[str | None, QueryParameter(description="Only this station")] = None,
    after: Annotated[
        int | None, QueryParameter(ge=0, description="Resume after this event id")
    ] = None,
    last_event_id: Annotated[
        str | None, HeaderParameter(name="Last-Event-ID", required=False)
    ] = None,
) -> ServerSentEvent:
    wanted = _types(types)
    resume = after
    if resume is None and last_event_id:
        resume = int(last_event_id) if last_event_id.isdigit() else None
    bus = ctx.central.events
    reset = False
    try:
        subscription = bus.subscribe(after=resume)
    except Lagged:
        subscription, reset = bus.subscribe(), True
    return ServerSentEvent(_messages(subscription, wanted, station, reset, bus.last_seq))


def _types(types: str | None) -> frozenset[str] | None:
    if not types:
        return None
    wanted = frozenset(t.strip() for t in types.split(",") if t.strip())
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise ClientException(
            f"unknown event types {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    return wanted


async def _messages(
    subscription: Subscription,
    wanted: frozenset[str] | None,
    station: str | None,
    reset: bool,
    last_seq: int,
) -> AsyncIterator[ServerSentEventMessage]:
    try:
        # Sent at once, so a client knows the stream is up before the first event.
        yield ServerSentEventMessage(comment="chargegrid events", data=None, retry=2000)
        if reset:
            yield ServerSentEventMessage(event="reset", data="{}", id=str(last_seq))
        while True:
            try:
                envelope = await subscription.next(KEEPALIVE_S)
            except Lagged:
                log.warning("event stream cut off: the client read too slowly")
                yield ServerSentEventMessage(event="lagged", data="{}")
                return
            except Closed:
                return
            if envelope is None:
                yield ServerSentEventMessage(comment="keep-alive", data=None)
                continue
            event = envelope.event
            if wanted is not None and event.__struct_config__.tag not in wanted:
                continue
            if station is not None and event.station_id != station:
                continue
            yield message(envelope)
    finally:
        subscription.close()


handlers = [stream_events]
