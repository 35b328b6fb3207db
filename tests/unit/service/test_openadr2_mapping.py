"""What each OpenADR 2.0b signal does to a circuit (:func:`chargegrid.service.openadr2.effect`):
SIMPLE levels, LOAD_DISPATCH, LOAD_CONTROL, prices, signals left out, values that do not fit,
and a property test (any signal: an Effect with limits of 0 or more, or SignalError)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import Circuit
from chargegrid.protocols.openadr2 import Event, EventStatus, Interval, ItemBase, Signal
from chargegrid.service.balancing import LimitBlock, PriceBlock
from chargegrid.service.openadr2 import MappingOptions, SignalError, effect

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
GRID = Circuit("grid", None, limit_a=32.0, limit_w=22_000.0)
KW = ItemBase("powerReal", "W", "k")


def _event(*signals: Signal) -> Event:
    return Event("ev-1", 0, EventStatus.FAR, T0, 2 * HOUR, signals)


def _signal(name: str, kind: str, *values: float, item: ItemBase | None = None) -> Signal:
    intervals = tuple(Interval(T0 + n * HOUR, HOUR, v) for n, v in enumerate(values))
    return Signal(name, kind, item, intervals)


def _limits(*signals: Signal, draw_w: float = 0.0, circuit: Circuit = GRID) -> list[CircuitLimit]:
    return [b.limit for b in effect(_event(*signals), circuit, draw_w=draw_w).limits]


def test_simple_levels_are_shares_of_the_circuit_limits() -> None:
    found = effect(_event(_signal("SIMPLE", "level", 0, 1, 2, 3)), GRID)
    assert [b.limit for b in found.limits] == [
        CircuitLimit(limit_a=32.0, limit_w=22_000.0),
        CircuitLimit(limit_a=24.0, limit_w=16_500.0),
        CircuitLimit(limit_a=16.0, limit_w=11_000.0),
        CircuitLimit(limit_a=0.0, limit_w=0.0),
    ]
    # each interval from its start, held a second past its end (whole seconds in profiles)
    assert [(b.circuit, b.start, b.end) for b in found.limits][1] == (
        "grid",
        T0 + HOUR,
        T0 + 2 * HOUR + SECOND,
    )
    assert found.prices == () and found.ignored == ()


def test_simple_levels_configured_and_lower_case_name() -> None:
    options = MappingOptions(simple_levels=(1.0, 0.5, 0.25, 0.1), hold=timedelta(0))
    found = effect(_event(_signal("simple", "level", 2)), GRID, options=options)
    assert found.limits == (
        LimitBlock("grid", CircuitLimit(limit_a=8.0, limit_w=5_500.0), T0, T0 + HOUR),
    )


def test_load_dispatch() -> None:
    assert _limits(_signal("LOAD_DISPATCH", "setpoint", 11, item=KW)) == [
        CircuitLimit(limit_w=11_000.0)
    ]
    watts = ItemBase("powerReal", "W", "none")
    assert _limits(_signal("LOAD_DISPATCH", "setpoint", 7_400, -5, item=watts)) == [
        CircuitLimit(limit_w=7_400.0),
        CircuitLimit(limit_w=0.0),  # a car cannot give back: 0
    ]
    assert _limits(_signal("LOAD_DISPATCH", "setpoint", 11)) == [
        CircuitLimit(limit_w=11_000.0)  # no item base: kW
    ]
    # relative to what the circuit draws when the event arrives
    assert _limits(_signal("LOAD_DISPATCH", "delta", -4, -20, item=KW), draw_w=10_000) == [
        CircuitLimit(limit_w=6_000.0),
        CircuitLimit(limit_w=0.0),
    ]
    assert _limits(_signal("LOAD_DISPATCH", "multiplier", 0.5), draw_w=10_000) == [
        CircuitLimit(limit_w=5_000.0)
    ]


def test_load_control() -> None:
    assert _limits(_signal("LOAD_CONTROL", "x-loadControlCapacity", 0.25)) == [
        CircuitLimit(limit_a=8.0, limit_w=5_500.0)
    ]
    assert _limits(_signal("LOAD_CONTROL", "x-loadControlPercentOffset", -50)) == [
        CircuitLimit(limit_a=16.0, limit_w=11_000.0)
    ]
    assert _limits(_signal("LOAD_CONTROL", "x-loadControlLevelOffset", 1, 7, -2)) == [
        CircuitLimit(limit_a=24.0, limit_w=16_500.0),
        CircuitLimit(limit_a=0.0, limit_w=0.0),  # above 3: level 3
        CircuitLimit(limit_a=32.0, limit_w=22_000.0),  # below 0: normal
    ]
    only_current = Circuit("garage", "grid", limit_a=16.0)
    assert _limits(_signal("LOAD_CONTROL", "x-loadControlCapacity", 0.5), circuit=only_current) == [
        CircuitLimit(limit_a=8.0)
    ]


def test_prices() -> None:
    euro = ItemBase("currencyPerKWh", "EUR", "none")
    found = effect(_event(_signal("ELECTRICITY_PRICE", "price", 0.3, -0.05, item=euro)), GRID)
    assert found.prices == (
        PriceBlock(0.3, "EUR", T0, T0 + HOUR),
        PriceBlock(-0.05, "EUR", T0 + HOUR, T0 + 2 * HOUR),
    )
    assert found.limits == () and found.applied
    found = effect(_event(_signal("ENERGY_PRICE", "price", 0.2)), GRID)
    assert found.prices == (PriceBlock(0.2, "", T0, T0 + HOUR),)


def test_signals_left_out_with_the_reason() -> None:
    found = effect(
        _event(
            _signal("BID_LOAD", "setpoint", 3),
            _signal("x-local", "level", 1),
            _signal("ELECTRICITY_PRICE", "priceRelative", 0.1),
            _signal("ELECTRICITY_PRICE", "price", 3, item=ItemBase("currencyPerKW", "EUR", "none")),
            _signal("LOAD_CONTROL", "x-loadControlSetpoint", 21),
            _signal("LOAD_DISPATCH", "level", 2),
            _signal("SIMPLE", "level", 1),
        ),
        GRID,
    )
    assert len(found.limits) == 1 and found.prices == ()
    assert [reason.split(":")[0] for reason in found.ignored] == [
        "BID_LOAD/setpoint",
        "x-local/level",
        "ELECTRICITY_PRICE/priceRelative",
        "ELECTRICITY_PRICE/price",
        "LOAD_CONTROL/x-loadControlSetpoint",
        "LOAD_DISPATCH/level",
    ]
    assert not effect(_event(_signal("CHARGE_STATE", "level", 1)), GRID).applied


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        (_signal("SIMPLE", "level", 4), "0 to 3"),
        (_signal("SIMPLE", "level", 1.5), "whole number"),
        (_signal("SIMPLE", "setpoint", 1), "type level"),
        (_signal("LOAD_CONTROL", "x-loadControlCapacity", 1.5), "from 0 to 1"),
        (_signal("LOAD_CONTROL", "x-loadControlPercentOffset", 20), "-100 to 0"),
        (_signal("LOAD_DISPATCH", "multiplier", -1), "0 or more"),
        (
            _signal("LOAD_DISPATCH", "setpoint", 1, item=ItemBase("currencyPerKWh", "EUR", "none")),
            "powerReal in W",
        ),
        (_signal("LOAD_DISPATCH", "setpoint", 1, item=ItemBase("powerReal", "W", "h")), "scale"),
        (_signal("ELECTRICITY_PRICE", "level", 1), "prices"),
    ],
)
def test_values_that_do_not_fit(signal: Signal, message: str) -> None:
    with pytest.raises(SignalError, match=message):
        effect(_event(signal), GRID)


def test_a_share_of_no_limit() -> None:
    with pytest.raises(SignalError, match="no limit of its own"):
        effect(_event(_signal("SIMPLE", "level", 1)), Circuit("free", None))


def test_options_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="four shares"):
        MappingOptions(simple_levels=(1.0, 0.5))
    with pytest.raises(ValueError, match="dispatch_scale"):
        MappingOptions(dispatch_scale="kilo")


_NAMES = ["SIMPLE", "simple", "LOAD_DISPATCH", "LOAD_CONTROL", "ELECTRICITY_PRICE", "BID_LOAD"]
_KINDS = [
    "level",
    "setpoint",
    "delta",
    "multiplier",
    "price",
    "priceRelative",
    "x-loadControlCapacity",
    "x-loadControlLevelOffset",
    "x-loadControlPercentOffset",
    "x-loadControlSetpoint",
]
_items = st.none() | st.builds(
    ItemBase,
    st.sampled_from(["powerReal", "currencyPerKWh", "currency", "energyReal"]) | st.text(),
    st.sampled_from(["W", "EUR", ""]) | st.text(max_size=3),
    st.sampled_from(["k", "none", "M", "m"]) | st.text(max_size=3),
)
_values = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
_signals = st.builds(
    lambda name, kind, item, values: _signal(name, kind, *values, item=item),
    st.sampled_from(_NAMES) | st.text(max_size=8),
    st.sampled_from(_KINDS) | st.text(max_size=8),
    _items,
    st.lists(_values, min_size=1, max_size=4),
)
_circuits = st.builds(
    Circuit,
    st.just("c"),
    st.none(),
    st.none() | st.floats(min_value=0, max_value=1e4),
    st.none() | st.floats(min_value=0, max_value=1e7),
)


@given(st.lists(_signals, min_size=1, max_size=4), _circuits, st.floats(0, 1e7))
def test_any_signal_maps_or_is_refused(
    signals: list[Signal], circuit: Circuit, draw: float
) -> None:
    try:
        found = effect(_event(*signals), circuit, draw_w=draw)
    except SignalError:
        return
    for block in found.limits:
        assert block.circuit == "c"
        for value in (block.limit.limit_a, block.limit.limit_w):
            assert value is None or value >= 0
        assert block.start is not None and block.end is not None and block.start < block.end
    assert len(found.limits) + len(found.prices) <= sum(len(s.intervals) for s in signals)
