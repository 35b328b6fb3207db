"""Server-Sent Events (WHATWG HTML, section 9.2) from a :class:`~chargegrid.service.feed.Feed`:
what every live stream of the API does the same way.

The stream opens with a comment (so the client knows it is up before the first item) and a
``retry`` of 2 s; a comment every 15 s keeps proxies from closing a quiet stream; a reader cut
off for reading too slowly gets ``event: lagged``; the feed is closed when the client leaves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

import structlog
from litestar.response import ServerSentEventMessage

from chargegrid.service.feed import Closed, Feed, Lagged

log = structlog.get_logger(__name__)

KEEPALIVE_S = 15.0
T = TypeVar("T")


async def relay(
    feed: Feed[T],
    render: Callable[[T], ServerSentEventMessage | None],
    *,
    name: str,
    first: Iterable[ServerSentEventMessage] = (),
) -> AsyncIterator[ServerSentEventMessage]:
    """Each item of ``feed`` as ``render`` makes it (None: not sent), after ``first``."""
    try:
        yield ServerSentEventMessage(comment=f"chargegrid {name}", data=None, retry=2000)
        for message in first:
            yield message
        while True:
            try:
                item = await feed.next(KEEPALIVE_S)
            except Lagged:
                log.warning("stream cut off: the client read too slowly", stream=name)
                yield ServerSentEventMessage(event="lagged", data="{}")
                return
            except Closed:
                return
            if item is None:
                yield ServerSentEventMessage(comment="keep-alive", data=None)
                continue
            rendered = render(item)
            if rendered is not None:
                yield rendered
    finally:
        feed.close()
