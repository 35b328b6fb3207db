"""The event bus: each committed domain event, numbered, to every subscriber of this process.

Rules:

* An event is delivered only once what it tells is committed. Outside a unit of work the
  use case's awaited write has committed before it publishes. Inside one (the OCPP service runs
  every station message in a unit) :meth:`EventBus.hold` collects the message's events and the
  unit's owner releases them once the unit has committed, or drops them if it failed.
* Events are numbered in delivery order (``seq``, from 1 per process). The last ``history``
  events are kept, so a stream that reconnects with the last number it saw misses nothing that
  is still kept (:meth:`EventBus.since`).
* Listeners are synchronous and must not block: they queue the event for their own task
  (the event stream, the webhook dispatcher). A listener that raises is logged and kept.
* In a cluster, the events other nodes committed are delivered too (:meth:`EventBus.deliver_remote`,
  numbered on this bus like the rest), with ``remote`` set: listeners that act once per event in
  the whole cluster (webhook deliveries, sharing the node's events) skip them.
* A subscription is a :class:`~.feed.Feed`: it holds at most ``limit`` undelivered events,
  and a subscriber that falls further behind is cut off (:class:`~.feed.Lagged`) rather than
  letting the process's memory grow.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar

import msgspec
import structlog

from chargegrid.domain.events import AnyEvent
from chargegrid.service.feed import Feed, Lagged

log = structlog.get_logger(__name__)


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """An event with its number on this process's bus; ``remote``: committed by another node."""

    seq: int
    event: AnyEvent
    remote: bool = False


Listener = Callable[[Envelope], None]
Subscription = Feed[Envelope]

_HELD: ContextVar[list[AnyEvent] | None] = ContextVar("chargegrid_held_events", default=None)


class EventBus:
    def __init__(self, *, history: int = 1000) -> None:
        self._seq = itertools.count(1)
        self._last = 0
        self._history: deque[Envelope] = deque(maxlen=history)
        self._listeners: list[Listener] = []

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def history_size(self) -> int:
        """How many of the latest events are kept for :meth:`since`."""
        return self._history.maxlen or 0

    def publish(self, event: AnyEvent) -> None:
        """Deliver ``event`` now, or when the held events of this context are released."""
        held = _HELD.get()
        if held is not None:
            held.append(event)
        else:
            self._deliver(event)

    def hold(self) -> list[AnyEvent]:
        """Collect the events published from now on in the current ``contextvars`` context;
        give the returned list to :meth:`release` once their writes are committed."""
        held: list[AnyEvent] = []
        _HELD.set(held)
        return held

    def release(self, held: list[AnyEvent]) -> None:
        for event in held:
            self._deliver(event)
        held.clear()

    def deliver_remote(self, event: AnyEvent) -> None:
        """Deliver an event another node of the cluster committed."""
        self._deliver(event, remote=True)

    def _deliver(self, event: AnyEvent, *, remote: bool = False) -> None:
        self._last = next(self._seq)
        envelope = Envelope(self._last, event, remote)
        self._history.append(envelope)
        for listener in self._listeners:
            try:
                listener(envelope)
            except Exception:
                log.exception("event listener failed", listener=repr(listener))

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def since(self, seq: int) -> list[Envelope] | None:
        """The kept events after number ``seq``, or None if some of them are no longer kept."""
        if seq >= self._last:
            return []
        kept = list(self._history)
        if not kept or kept[0].seq > seq + 1:
            return None
        return [e for e in kept if e.seq > seq]

    def subscribe(self, *, limit: int = 10_000, after: int | None = None) -> Subscription:
        """An async iterator of the events from now on (after ``after`` if given and kept).

        Raises :class:`Lagged` at once if ``after`` names events no longer kept.
        """
        backlog: list[Envelope] = []
        if after is not None:
            found = self.since(after)
            if found is None:
                raise Lagged(f"events after {after} are no longer kept")
            backlog = found
        subscription: Subscription = Feed(limit, backlog)
        subscription.on_close = self.listen(subscription.offer)
        return subscription
