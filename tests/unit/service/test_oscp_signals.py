"""What a site's plan tells a Capacity Provider (chargegrid.service.oscp_signals), on plans the
real balancer makes: the blocks a GroupCapacityComplianceError names, the capacity an
AdjustGroupCapacityForecast asks for, and the limits that would be were it granted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargegrid.domain.balancing import CircuitLimit, Demand, balance
from chargegrid.domain.site import Circuit, EvseSlot, Site, Wiring
from chargegrid.protocols import oscp
from chargegrid.service import oscp_signals as signals

NOW = datetime(2026, 1, 5, 12, 7, tzinfo=UTC)
START, END = NOW - timedelta(minutes=7), NOW + timedelta(minutes=8)


def _held(limit: float, unit: str = "A", phase: str | None = None, ahead: int = 0) -> signals.Held:
    start, end = START + timedelta(minutes=15 * ahead), END + timedelta(minutes=15 * ahead)
    block = oscp.forecasted_block(limit, unit, phase, start, end)  # type: ignore[arg-type]
    return block, oscp.capacity_block(block)


def _site(*dumb: EvseSlot) -> Site:
    evses = (EvseSlot("A", 1, "garage"), EvseSlot("B", 1, "garage"), *dumb)
    circuits = (Circuit("grid", None, limit_a=63), Circuit("garage", "grid", limit_a=32))
    return Site("depot", circuits, evses)


def test_fixed_loads_over_the_forecast_are_a_compliance_error() -> None:
    dumb = EvseSlot("D", 1, "grid", wiring=Wiring.parse("L2"), smart=False, fallback_a=16)
    site = _site(dumb)
    held = [_held(10), _held(20, ahead=1), _held(12, ahead=2), _held(3000, "W", "L2")]
    limits = {"grid": CircuitLimit(limit_a=10)}
    plan = balance(site, [Demand("A/1")], limits=limits, now=NOW)
    assert plan.overloaded == ("grid/L2",)
    load, keys = signals.fixed_load(site, "grid", frozenset())
    assert keys == ["D/1"]
    assert load.amps == (0, 16, 0) and load.watts == pytest.approx(16 * 230)
    blocks = signals.compliance_blocks(site, "grid", plan, held, load, NOW)
    # the one in force, the one ahead the same load exceeds, and 3000 W on L2 (16 A x 230 V)
    assert blocks == [held[0][0], held[2][0], held[3][0]]
    # the garage's EVSEs are not under another group's circuit
    assert signals.fixed_load(site, "garage", frozenset())[0].watts == 0


def test_over_another_limit_is_not_the_forecasts_doing() -> None:
    dumb = EvseSlot("D", 1, "grid", smart=False, fallback_a=16)
    site = _site(dumb)
    plan = balance(site, [], limits={"grid": CircuitLimit(limit_a=12)}, now=NOW)
    assert plan.overloaded
    load, _ = signals.fixed_load(site, "grid", frozenset())
    assert signals.compliance_blocks(site, "grid", plan, [_held(40)], load, NOW) == []
    quiet = balance(site, [], now=NOW)
    assert signals.compliance_blocks(site, "grid", quiet, [_held(10)], load, NOW) == []


def test_an_offline_station_counts_at_its_fallback() -> None:
    load, keys = signals.fixed_load(_site(), "grid", frozenset({"B/1"}))
    assert keys == ["B/1"] and load.amps == (6, 6, 6)


def test_what_the_balancer_counts_is_the_fixed_load() -> None:
    """An EVSE the balancer counts at a current of its own (an offline station's car holding a
    profile, a profile in doubt) is counted so here too, as :func:`balance` does."""
    dumb = EvseSlot("D", 1, "grid", wiring=Wiring.parse("L2"), smart=False, fallback_a=16)
    site = _site(dumb)
    fixed = {"B/1": 20.0, "A/1": 10.0}  # B offline holding 20 A; A online, its profile in doubt
    load, keys = signals.fixed_load(site, "grid", frozenset({"B/1"}), fixed)
    assert keys == ["A/1", "B/1", "D/1"]
    assert load.amps == (30, 46, 30) and load.watts == pytest.approx(106 * 230)
    limits = {"grid": CircuitLimit(limit_a=40)}
    plan = balance(site, [], limits=limits, offline=frozenset({"B/1"}), fixed=fixed, now=NOW)
    assert plan.overloaded == ("grid/L2",)  # the balancer's count: the same 46 A on L2
    blocks = signals.compliance_blocks(site, "grid", plan, [_held(40)], load, NOW)
    assert len(blocks) == 1


def test_paused_cars_ask_for_their_minimum() -> None:
    site = _site()
    held = [_held(10), _held(6900, "W"), _held(8, "A", "L1"), _held(5, ahead=1)]
    limits = {"grid": CircuitLimit(limit_a=6.5, limit_w=6900, phase_a=(8, None, None))}
    plan = balance(site, [Demand("A/1"), Demand("B/1", phases=1)], limits=limits, now=NOW)
    assert [a.state for a in plan.allocations] == ["charging", "paused"]
    asks = signals.adjustment(site, "grid", plan, held, NOW)
    # B draws on one phase (L1): 6 A more on L1 and on every phase, 6 A x 230 V in watts
    assert [(fb.capacity, fb.unit.value, fb.phase.value) for _, fb in asks] == [
        (16, "A", "ALL"),
        (8280, "W", "ALL"),
        (14, "A", "ONE"),
    ]
    assert all((fb.start_time, fb.end_time) == (START, END) for _, fb in asks)
    raised = signals.relaxed(limits, "grid", asks, site.voltage_v)["grid"]
    assert raised == CircuitLimit(limit_a=6.5, limit_w=8280, phase_a=(14, None, None))
    # 6.5 A is another source's, lower than the CP's 10 A: asking the CP does not raise it
    then = balance(site, [Demand("A/1"), Demand("B/1", phases=1)], limits={"grid": raised})
    assert [a.state for a in then.allocations] == ["charging", "paused"]


def test_nothing_to_ask_without_paused_cars_or_a_block_in_force() -> None:
    site = _site()
    plan = balance(site, [Demand("A/1")], limits={"grid": CircuitLimit(limit_a=10)}, now=NOW)
    assert signals.adjustment(site, "grid", plan, [_held(10)], NOW) == []
    paused = balance(
        site, [Demand("A/1"), Demand("B/1")], limits={"grid": CircuitLimit(limit_a=10)}
    )
    assert signals.adjustment(site, "grid", paused, [_held(10, ahead=1)], NOW) == []
    asks = signals.adjustment(site, "grid", paused, [_held(10)], NOW)
    raised = signals.relaxed({"grid": CircuitLimit(limit_a=10)}, "grid", asks, site.voltage_v)
    then = balance(site, [Demand("A/1"), Demand("B/1")], limits=raised)
    assert [a.state for a in then.allocations] == ["charging", "charging"]
