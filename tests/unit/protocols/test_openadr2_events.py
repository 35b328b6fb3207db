"""OpenADR 2.0b events from openleadr's dicts: an oadrDistributeEvent built and parsed by
openleadr itself (the shape the VEN really gets), intervals chained from the active period,
open-ended ones, what does not hold, and a property test (anything at all: an Event or
Openadr2Error, nothing else)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openleadr import objects
from openleadr.messaging import create_message, parse_message

from chargegrid.protocols.openadr2 import (
    EventStatus,
    ItemBase,
    Openadr2Error,
    decode_event,
    event_id_of,
)

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
LATER = datetime(2099, 3, 2, 14, 0, tzinfo=UTC)


def _raw(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_descriptor": {
            "event_id": "ev-1",
            "modification_number": 2,
            "event_status": "far",
            "priority": 1,
            "test_event": False,
        },
        "active_period": {"dtstart": T0, "duration": 2 * HOUR},
        "event_signals": [
            {
                "signal_name": "LOAD_DISPATCH",
                "signal_type": "setpoint",
                "signal_id": "s-1",
                "measurement": {"name": "powerReal", "unit": "W", "scale": "k"},
                "intervals": [
                    {"duration": HOUR, "uid": 0, "signal_payload": 11.0},
                    {"duration": HOUR, "uid": 1, "signal_payload": 7},
                ],
            }
        ],
        "response_required": "always",
    }
    event.update(changes)
    return event


def test_an_event_openleadr_parsed() -> None:
    """Built with openleadr's VTN-side objects, serialised and parsed back by openleadr: the
    dict on_event receives. (openleadr sets the status from the clock: far ahead, "far".)"""
    event = objects.Event(
        event_descriptor=objects.EventDescriptor(
            event_id="ev-7",
            modification_number=3,
            market_context="oadr://grid.example/dr",
            event_status="far",
            test_event=False,
        ),
        event_signals=[
            objects.EventSignal(
                intervals=[
                    objects.Interval(dtstart=LATER, duration=HOUR, signal_payload=1, uid=0),
                    objects.Interval(dtstart=LATER + HOUR, duration=HOUR, signal_payload=2, uid=1),
                ],
                signal_name="SIMPLE",
                signal_type="level",
                signal_id="sig",
            ),
            objects.EventSignal(
                intervals=[objects.Interval(dtstart=LATER, duration=2 * HOUR, signal_payload=0.21)],
                signal_name="ELECTRICITY_PRICE",
                signal_type="price",
                signal_id="sig-price",
                measurement=objects.Measurement(
                    name="currencyPerKWh", description="currencyPerKWh", unit="EUR", scale="none"
                ),
            ),
        ],
        targets=[{"ven_id": "ven-1"}],
    )
    xml = create_message(
        "oadrDistributeEvent",
        request_id="r-1",
        vtn_id="VTN",
        response={"response_code": 200, "response_description": "OK", "request_id": "r-1"},
        events=[event],
    )
    kind, payload = parse_message(xml)
    assert kind == "oadrDistributeEvent"
    decoded = decode_event(payload["events"][0])
    assert (decoded.event_id, decoded.modification_number) == ("ev-7", 3)
    assert decoded.status is EventStatus.FAR
    assert decoded.start == LATER and decoded.end == LATER + 2 * HOUR
    simple, price = decoded.signals
    assert (simple.name, simple.kind, simple.item) == ("SIMPLE", "level", None)
    assert [(i.start, i.end, i.value) for i in simple.intervals] == [
        (LATER, LATER + HOUR, 1.0),
        (LATER + HOUR, LATER + 2 * HOUR, 2.0),
    ]
    # openleadr leaves the item base of a signal after one without unparsed: read all the same
    assert price.item == ItemBase("currencyPerKWh", "EUR", "none")
    assert price.intervals[0].value == pytest.approx(0.21)


def test_intervals_follow_each_other_from_the_active_period() -> None:
    event = decode_event(_raw())
    [signal] = event.signals
    assert [(i.start, i.duration, i.value) for i in signal.intervals] == [
        (T0, HOUR, 11.0),
        (T0 + HOUR, HOUR, 7.0),
    ]
    assert signal.item == ItemBase("powerReal", "W", "k")
    assert event.priority == 1 and not event.test


def test_a_duration_of_zero_holds_until_changed() -> None:
    raw = _raw(active_period={"dtstart": T0, "duration": timedelta(0)})
    raw["event_signals"][0]["intervals"] = [
        {"duration": HOUR, "signal_payload": 5},
        {"duration": timedelta(0), "signal_payload": 3},
    ]
    event = decode_event(raw)
    assert event.duration is None and event.end is None
    assert event.signals[0].intervals[1].end is None


def test_an_offset_openleadr_left_as_text() -> None:
    raw = _raw(active_period={"dtstart": "2026-03-02T15:00:00+01:00", "duration": HOUR})
    assert decode_event(raw).start == T0.astimezone(timezone(timedelta(hours=1)))


def test_the_event_signals_nested_once_more() -> None:
    raw = _raw()
    raw["event_signals"] = {"event_signals": raw["event_signals"]}
    assert len(decode_event(raw).signals) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["event_descriptor"].pop("event_id"), "event_id"),
        (lambda r: r["event_descriptor"].update(modification_number=-1), "modification_number"),
        (lambda r: r["event_descriptor"].update(modification_number="2"), "modification_number"),
        (lambda r: r["event_descriptor"].update(event_status="paused"), "event_status"),
        (lambda r: r["event_descriptor"].update(test_event="yes"), "test_event"),
        (lambda r: r.pop("active_period"), "active_period"),
        (lambda r: r["active_period"].update(dtstart=datetime(2026, 3, 2)), "offset from UTC"),
        (lambda r: r["active_period"].update(dtstart="tomorrow"), "ISO 8601"),
        (lambda r: r["active_period"].update(duration=-HOUR), "0 or more"),
        (lambda r: r["active_period"].update(duration="PT1H"), "a duration"),
        (lambda r: r["event_signals"][0].pop("signal_name"), "signal_name"),
        (lambda r: r["event_signals"][0].update(intervals=[]), "one interval or more"),
        (lambda r: r["event_signals"][0]["intervals"][0].update(signal_payload=True), "number"),
        (
            lambda r: r["event_signals"][0]["intervals"][0].update(signal_payload=float("nan")),
            "finite",
        ),
        (lambda r: r["event_signals"][0]["intervals"][0].update(signal_payload=10**400), "range"),
        (
            lambda r: r["event_signals"][0]["intervals"][0].update(duration=timedelta(0)),
            "after an interval without end",
        ),
        (lambda r: r["event_signals"][0].update(measurement={"unit": "W"}), "measurement.name"),
        (
            lambda r: r["event_signals"][0]["intervals"][1].update(duration=timedelta.max),
            "year 9999",
        ),
        (lambda r: r.update(event_signals="LOAD_DISPATCH"), "a list"),
    ],
)
def test_what_does_not_hold(change: Any, message: str) -> None:
    raw = _raw()
    change(raw)
    with pytest.raises(Openadr2Error, match=message):
        decode_event(raw)


def test_the_id_of_an_event_that_does_not_hold() -> None:
    raw = _raw(active_period=None)
    assert event_id_of(raw) == "ev-1"
    assert event_id_of({"event_descriptor": {"event_id": 7}}) is None
    assert event_id_of(None) is None


_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.datetimes(timezones=st.just(UTC) | st.none())
    | st.timedeltas()
)
_junk = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)
_KEYS = ("event_descriptor", "active_period", "event_signals")


@given(_junk)
def test_anything_decodes_or_is_refused(raw: Any) -> None:
    with contextlib.suppress(Openadr2Error):
        decode_event(raw)


@given(
    st.fixed_dictionaries({k: _junk for k in _KEYS}),
    st.sampled_from(_KEYS),
    st.integers(min_value=0, max_value=2),
)
def test_a_real_event_with_a_part_spoilt(parts: dict[str, Any], key: str, keep: int) -> None:
    """Start from a good event; replace one part (or a part of it) with anything."""
    raw = _raw()
    if keep == 0:
        raw[key] = parts[key]
    elif key == "event_signals":
        raw[key][0]["intervals"][0]["signal_payload"] = parts[key]
    elif isinstance(raw[key], dict):
        raw[key][next(iter(raw[key]))] = parts[key]
    with contextlib.suppress(Openadr2Error):
        decode_event(raw)
