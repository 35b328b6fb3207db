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

from collections.abc import Callable
from typing import Annotated

import msgspec
from litestar import get
from litestar.exceptions import ClientException
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chargegrid.domain.events import EVENT_TYPES
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.sse import relay
from chargegrid.service.events import Envelope
from chargegrid.service.feed import Lagged

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
    first = (
        [ServerSentEventMessage(event="reset", data="{}", id=str(bus.last_seq))] if reset else []
    )
    return ServerSentEvent(
        relay(subscription, _render(wanted, station), name="events", first=first)
    )


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


def _render(
    wanted: frozenset[str] | None, station: str | None
) -> Callable[[Envelope], ServerSentEventMessage | None]:
    def render(envelope: Envelope) -> ServerSentEventMessage | None:
        event = envelope.event
        if wanted is not None and event.__struct_config__.tag not in wanted:
            return None
        if station is not None and event.station_id != station:
            return None
        return message(envelope)

    return render


handlers = [stream_events]
