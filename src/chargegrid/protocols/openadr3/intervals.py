"""When each interval of an event holds (OpenADR 3.0.1 Definitions and User Guide, "intervals"
and "intervalPeriod"), as absolute times.

Rules, in the order the intervals are listed (their ``id`` is not a sequence number):

1. An interval's own ``intervalPeriod`` overrides the event's, property by property: ``start``
   and ``duration`` each come from the interval if it has them, else from the event.
2. An interval without a start of its own follows the one before it (the first starts at the
   event's start): intervals are sequential, each of the default duration.
3. A start in the year 1 (3.1: ``0001-01-01`` "may indicate now"), or no start anywhere
   (3.1 makes ``start`` optional), is ``now``, the moment the caller first saw the event.
4. A duration of ``PT0S`` (the default, "instantaneous or infinity") or ``P9999Y`` ("may indicate
   infinity", 3.1), or an end past the year 9999, holds until changed: ``end`` None.
5. ``randomizeStart`` is not applied: a limit or price is honoured from its start.

An event that cannot be placed (a negative duration; an interval after an endless one without a
start of its own) raises :class:`OpenAdrError` (400): the whole event, not a guess at part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from msgspec import UnsetType

from chargegrid.protocols.openadr3.datatypes import Duration
from chargegrid.protocols.openadr3.errors import BAD_REQUEST, OpenAdrError
from chargegrid.protocols.openadr3.messages import Event, IntervalPeriod, ValuesMap

__all__ = ["Slot", "event_end", "event_slots"]

_ENDLESS = Duration()


@dataclass(frozen=True, slots=True)
class Slot:
    """Interval ``interval_id`` of an event: its payloads from ``start`` to ``end`` (None: until
    changed)."""

    interval_id: int
    start: datetime
    end: datetime | None
    payloads: tuple[ValuesMap, ...]


def event_slots(event: Event, now: datetime) -> list[Slot]:
    """The event's intervals as absolute times, in the order listed."""
    default = event.interval_period
    base_start = _start(default, now)
    base_duration = _duration(default)
    out: list[Slot] = []
    follows: datetime | None = base_start or now
    for interval in event.intervals:
        own = interval.interval_period
        start = _start(own, now)
        if start is None:
            if follows is None:
                raise OpenAdrError(
                    f"interval {interval.id} follows an endless one and has no start of its own",
                    BAD_REQUEST,
                )
            start = follows
        duration = _duration(own) or base_duration or _ENDLESS
        end = _end(start, duration, interval.id)
        out.append(Slot(interval.id, start, end, interval.payloads))
        follows = end
    return out


def event_end(slots: list[Slot]) -> datetime | None:
    """When the last of the slots ends; None if one never does (or there are none)."""
    if not slots or any(s.end is None for s in slots):
        return None
    return max(s.end for s in slots if s.end is not None)


def _start(period: IntervalPeriod | UnsetType, now: datetime) -> datetime | None:
    if isinstance(period, UnsetType) or isinstance(period.start, UnsetType):
        return None
    return now if period.start.year == 1 else period.start


def _duration(period: IntervalPeriod | UnsetType) -> Duration | None:
    if isinstance(period, UnsetType) or isinstance(period.duration, UnsetType):
        return None
    return period.duration


def _end(start: datetime, duration: Duration, interval_id: int) -> datetime | None:
    if duration.negative and not duration.endless:
        raise OpenAdrError(
            f"interval {interval_id} has a negative duration ({duration})", BAD_REQUEST
        )
    if duration.endless:
        return None
    try:
        return duration.after(start)
    except OverflowError:
        return None
