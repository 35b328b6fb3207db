"""OpenADR 2.0b events as typed records, from the dicts ``openleadr`` parses an
oadrDistributeEvent into (OpenADR 2.0b Profile Specification, 8.3 "EiEvent Service"; the event
model is Energy Interoperation 1.0's ``ei:eiEvent``).

What an event holds, and the rules :func:`decode_event` checks:

* ``event_descriptor``: an ``event_id`` (a non-empty string), a ``modification_number`` (an
  integer, 0 or more: each change of the event by the VTN raises it), an ``event_status``
  (``none``, ``far``, ``near``, ``active``, ``completed``, ``cancelled``), ``test_event`` (a
  test event is acknowledged, not acted on) and a ``priority`` (0 or more; 0 is "none").
* ``active_period``: ``dtstart`` and ``duration``. A duration of 0 (``PT0S``) is an event
  without a set end: it holds until the VTN changes or cancels it.
* ``event_signals``: each with a ``signal_name``, a ``signal_type``, optionally an item base
  (``measurement``: its ``name`` such as ``powerReal`` or ``currencyPerKWh``, ``unit``, SI
  ``scale``; openleadr leaves some unparsed, read here too) and ``intervals``. Each interval
  has a payload (a finite number), a ``duration`` and optionally its own ``dtstart``; without
  one it starts where the one before it ends, the first at the active period's start. An
  interval of duration 0 holds until the event changes, so only the last interval may have one.

Timestamps are aware datetimes (openleadr gives them so; a string it could not parse, with
another offset than ``Z``, is read as ISO 8601 here).

Signal names and types are kept as given: what chargegrid does with each (and that it ignores
those it does not know) is the service's business (:mod:`chargegrid.service.openadr2`).

Errors: :class:`Openadr2Error` (a ``ValueError``) is the only error :func:`decode_event` raises,
whatever it is given; the message says what does not hold.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


class Openadr2Error(ValueError):
    """An event that does not hold (the VEN opts out of it): the message says what."""


class EventStatus(enum.Enum):
    """``ei:eventStatus`` (Energy Interoperation 1.0, EventStatusEnumeratedType)."""

    NONE = "none"
    FAR = "far"
    NEAR = "near"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ItemBase:
    """What a signal's payloads measure: ``name`` (``powerReal``, ``currencyPerKWh``...),
    ``unit`` (``W``, ``USD``...) and the SI ``scale`` code (``k``, ``M``, ``none``...)."""

    name: str
    unit: str
    scale: str


@dataclass(frozen=True, slots=True)
class Interval:
    """One interval of a signal: ``value`` from ``start`` for ``duration`` (None: until the
    event is changed or cancelled)."""

    start: datetime
    duration: timedelta | None
    value: float

    @property
    def end(self) -> datetime | None:
        return None if self.duration is None else self.start + self.duration


@dataclass(frozen=True, slots=True)
class Signal:
    name: str  # SIMPLE, LOAD_DISPATCH, ELECTRICITY_PRICE, ...
    kind: str  # the signal type: level, setpoint, delta, price, x-loadControlCapacity, ...
    item: ItemBase | None
    intervals: tuple[Interval, ...]
    signal_id: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    modification_number: int
    status: EventStatus
    start: datetime
    duration: timedelta | None  # None: no set end
    signals: tuple[Signal, ...]
    test: bool = False
    priority: int = 0

    @property
    def end(self) -> datetime | None:
        """When the last of its intervals ends (None: one holds until changed)."""
        ends = [i.end for s in self.signals for i in s.intervals]
        if not ends:
            return None if self.duration is None else self.start + self.duration
        if any(e is None for e in ends):
            return None
        return max(e for e in ends if e is not None)


def event_id_of(raw: object) -> str | None:
    """The event's id if ``raw`` has a usable one, whatever else is wrong with it."""
    if not isinstance(raw, Mapping):
        return None
    descriptor = raw.get("event_descriptor")
    if not isinstance(descriptor, Mapping):
        return None
    event_id = descriptor.get("event_id")
    return event_id if isinstance(event_id, str) and event_id else None


def decode_event(raw: object) -> Event:
    """One event of an oadrDistributeEvent, as openleadr hands it to ``on_event``."""
    data = _mapping(raw, "event")
    descriptor = _mapping(data.get("event_descriptor"), "event_descriptor")
    event_id = descriptor.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise Openadr2Error("event_descriptor.event_id: a non-empty string is needed")
    modification = _integer(descriptor.get("modification_number", 0), "modification_number")
    if modification < 0:
        raise Openadr2Error("modification_number: 0 or more")
    status_text = descriptor.get("event_status", "none")
    try:
        status = EventStatus(status_text)
    except ValueError:
        raise Openadr2Error(f"event_status {status_text!r} is not an OpenADR status") from None
    priority = _integer(descriptor.get("priority", 0) or 0, "priority")
    test = descriptor.get("test_event", False)
    if not isinstance(test, bool):
        raise Openadr2Error("test_event: true or false")

    period = _mapping(data.get("active_period"), "active_period")
    start = _moment(period.get("dtstart"), "active_period.dtstart")
    duration = _duration(period.get("duration"), "active_period.duration")
    if duration is not None:
        _after(start, duration, "active_period")

    signals_raw = data.get("event_signals", [])
    if isinstance(signals_raw, Mapping):  # openleadr nests the list one level more at times
        signals_raw = signals_raw.get("event_signals", [])
    if not isinstance(signals_raw, list | tuple):
        raise Openadr2Error("event_signals: a list is needed")
    signals = tuple(_signal(s, start, n) for n, s in enumerate(signals_raw))
    return Event(event_id, modification, status, start, duration, signals, test, priority)


def _signal(raw: object, start: datetime, n: int) -> Signal:
    where = f"event_signals[{n}]"
    data = _mapping(raw, where)
    name = data.get("signal_name")
    kind = data.get("signal_type")
    if not isinstance(name, str) or not name:
        raise Openadr2Error(f"{where}.signal_name: a non-empty string is needed")
    if not isinstance(kind, str) or not kind:
        raise Openadr2Error(f"{where}.signal_type: a non-empty string is needed")
    signal_id = data.get("signal_id", "")
    item = _item(data.get("measurement"), where) or _unparsed_item(data, where)
    intervals_raw = data.get("intervals")
    if not isinstance(intervals_raw, list | tuple) or not intervals_raw:
        raise Openadr2Error(f"{where}.intervals: a list of one interval or more is needed")
    intervals: list[Interval] = []
    cursor: datetime | None = start
    for m, interval_raw in enumerate(intervals_raw):
        at = f"{where}.intervals[{m}]"
        interval = _mapping(interval_raw, at)
        own = interval.get("dtstart")
        if own is not None:
            begins = _moment(own, f"{at}.dtstart")
        elif cursor is not None:
            begins = cursor
        else:
            raise Openadr2Error(f"{at}: no dtstart, after an interval without end")
        length = _duration(interval.get("duration"), f"{at}.duration")
        value = _number(interval.get("signal_payload"), f"{at}.signal_payload")
        intervals.append(Interval(begins, length, value))
        cursor = None if length is None else _after(begins, length, at)
    own_id = signal_id if isinstance(signal_id, str) else ""
    return Signal(name, kind, item, tuple(intervals), own_id)


def _item(raw: object, where: str) -> ItemBase | None:
    if raw is None:
        return None
    data = _mapping(raw, f"{where}.measurement")
    name = data.get("name")
    unit = data.get("unit") or ""
    scale = data.get("scale") or "none"
    if not isinstance(name, str) or not name:
        raise Openadr2Error(f"{where}.measurement.name: a non-empty string is needed")
    if not isinstance(unit, str) or not isinstance(scale, str):
        raise Openadr2Error(f"{where}.measurement: unit and scale are strings")
    return ItemBase(name, unit, scale)


def _unparsed_item(signal: Mapping[str, Any], where: str) -> ItemBase | None:
    """openleadr 0.5 parses the item base of the signals before the first one without one,
    and leaves the later ones as it found them (``powerReal: {item_units, si_scale_code}``):
    read those here, or a signal in W would pass for one without unit (kW)."""
    for key, value in signal.items():
        if isinstance(key, str) and isinstance(value, Mapping) and "item_units" in value:
            item = {"name": key, "unit": value["item_units"], "scale": value.get("si_scale_code")}
            return _item(item, where)
    return None


def _mapping(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise Openadr2Error(f"{where}: an object is needed")
    return raw


def _moment(raw: object, where: str) -> datetime:
    if isinstance(raw, str):
        try:
            raw = datetime.fromisoformat(raw)
        except ValueError:
            raise Openadr2Error(f"{where}: {raw!r} is not an ISO 8601 date-time") from None
    if not isinstance(raw, datetime):
        raise Openadr2Error(f"{where}: a date-time is needed")
    if raw.tzinfo is None or raw.utcoffset() is None:
        raise Openadr2Error(f"{where}: a date-time with its offset from UTC is needed")
    return raw


def _duration(raw: object, where: str) -> timedelta | None:
    """None for a duration of 0: until the event changes."""
    if not isinstance(raw, timedelta):
        raise Openadr2Error(f"{where}: a duration is needed")
    if raw < timedelta(0):
        raise Openadr2Error(f"{where}: a duration of 0 or more is needed")
    return None if raw == timedelta(0) else raw


def _after(start: datetime, length: timedelta, where: str) -> datetime:
    try:
        return start + length
    except OverflowError:
        raise Openadr2Error(f"{where}: ends after the year 9999") from None


def _number(raw: object, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise Openadr2Error(f"{where}: a number is needed")
    try:
        value = float(raw)
    except OverflowError:
        raise Openadr2Error(f"{where}: {raw} is out of range") from None
    if not math.isfinite(value):
        raise Openadr2Error(f"{where}: a finite number is needed")
    return value


def _integer(raw: object, where: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise Openadr2Error(f"{where}: an integer is needed")
    return raw
