"""The load balancer, by its properties on random sites (hypothesis): no circuit or phase limit
is exceeded, no charging car is below its minimum, no car is left below its maximum (or paused)
while every limit it loads has room for more, and the result does not depend on the order of
the input. Then the policies on small sites worked out by hand."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargegrid.domain.balancing import CircuitLimit, Demand, Plan, Policy, balance
from chargegrid.domain.site import SITE_PHASES, Circuit, EvseSlot, Site, SiteError, Wiring

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
TOL = 1e-6
HOURS_4 = timedelta(hours=4)
MINUTE = timedelta(minutes=1)
WIRINGS = ["L1L2L3", "L2L3L1", "L3L1L2", "L1L3L2", "L1", "L2", "L3"]


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[Site, list[Demand], frozenset[str], Policy, dict[str, CircuitLimit]]:
    amps = st.one_of(st.none(), st.floats(0, 250, allow_nan=False))
    watts = st.one_of(st.none(), st.floats(0, 150_000, allow_nan=False))
    circuits = [Circuit("grid", None, draw(amps), draw(watts))]
    for i in range(draw(st.integers(0, 6))):
        parent = draw(st.sampled_from([c.id for c in circuits]))
        circuits.append(Circuit(f"c{i}", parent, draw(amps), draw(watts)))
    evses = []
    for i in range(draw(st.integers(0, 14))):
        high = draw(st.sampled_from([6.0, 10.0, 16.0, 20.0, 32.0, 63.0]))
        evses.append(
            EvseSlot(
                f"S{i}",
                draw(st.integers(1, 2)),
                draw(st.sampled_from([c.id for c in circuits])),
                Wiring.parse(draw(st.sampled_from(WIRINGS))),
                max_a=high,
                min_a=draw(st.sampled_from([0.0, 6.0, 6.0, min(8.0, high)])),
                smart=draw(st.booleans()) or draw(st.booleans()),
                fallback_a=min(high, draw(st.sampled_from([0.0, 6.0, 10.0]))),
            )
        )
    site = Site("site", tuple(circuits), tuple(evses), draw(st.sampled_from([120.0, 230.0])))
    demands = []
    for evse in evses:
        if not draw(st.booleans()):
            continue
        offered = draw(st.one_of(st.none(), st.floats(0, 63)))
        demands.append(
            Demand(
                evse.key,
                phases=draw(st.sampled_from([1, 3])),
                max_a=draw(st.one_of(st.none(), st.floats(0, 63))),
                min_a=draw(st.one_of(st.none(), st.floats(0, 10))),
                measured_a=None if offered is None else draw(st.floats(0, offered)),
                offered_a=offered,
                priority=draw(st.integers(0, 2)),
                since=NOW - timedelta(minutes=draw(st.integers(0, 600))),
                energy_wh=draw(st.one_of(st.none(), st.floats(0, 80_000))),
                departure=NOW + timedelta(minutes=draw(st.integers(-60, 900))),
            )
        )
    offline = frozenset(draw(st.sets(st.sampled_from([e.key for e in evses]))) if evses else set())
    extra = {}
    for circuit in circuits:
        if draw(st.integers(0, 3)) == 0:
            phases = (draw(amps), draw(amps), draw(amps)) if draw(st.booleans()) else (None,) * 3
            extra[circuit.id] = CircuitLimit(draw(amps), draw(watts), phases)  # type: ignore[arg-type]
    return site, demands, offline, draw(st.sampled_from(list(Policy))), extra


def _bounds(site: Site, demand: Demand) -> tuple[float, float]:
    slot = next(e for e in site.evses if e.key == demand.evse)
    low = max(slot.min_a, demand.min_a or 0.0)
    high = min(slot.max_a, demand.max_a if demand.max_a is not None else 1e9)
    measured, offered = demand.measured_a, demand.offered_a
    if measured is not None and offered is not None and measured < offered - 2.0:
        high = min(high, max(measured + 2.0, low))
    return low, high


def _limits(site: Site, extra: dict[str, CircuitLimit]) -> dict[str, float]:
    out = {}
    for c in site.circuits:
        more = extra.get(c.id, CircuitLimit())
        amps = [x for x in (c.limit_a, more.limit_a) if x is not None]
        watts = [x for x in (c.limit_w, more.limit_w) if x is not None]
        for i, p in enumerate(SITE_PHASES):
            caps = amps + [x for x in (more.phase_a[i],) if x is not None]
            if caps:
                out[f"{c.id}/{p}"] = min(caps)
        if watts:
            out[f"{c.id}/W"] = min(watts)
    return out


def _loads(
    site: Site,
    plan: Plan,
    offline: frozenset[str],
    demands: list[Demand],
    fixed: dict[str, float] | None = None,
) -> dict[str, float]:
    """Each limit's load, worked out from the plan's currents and the site, independently of
    the code: a car loads the first of its EVSE's phases, as many as it draws on."""
    load: dict[str, float] = defaultdict(float)
    slots = {e.key: e for e in site.evses}
    drawn = {d.evse: d.phases for d in demands}

    def add(slot: EvseSlot, phases: list[str], amps: float) -> None:
        for circuit in site.path(slot.circuit):
            for p in phases:
                load[f"{circuit}/{p}"] += amps
            load[f"{circuit}/W"] += amps * site.voltage_v * len(phases)

    fixed = fixed or {}
    for slot in site.evses:
        if slot.key in fixed:
            add(slot, [SITE_PHASES[p] for p in slot.wiring.phases], fixed[slot.key])
        elif not slot.smart or slot.key in offline:
            add(slot, [SITE_PHASES[p] for p in slot.wiring.phases], slot.fallback_a)
    for a in plan.allocations:
        if a.state == "charging":
            wiring = slots[a.evse].wiring.phases
            phases = [SITE_PHASES[p] for p in wiring[: max(1, min(drawn[a.evse], len(wiring)))]]
            assert list(a.phases) == phases, a
            add(slots[a.evse], phases, a.current_a)
    return load


def _terms(
    site: Site, evse: str, phases: tuple[str, ...], limits: dict[str, float]
) -> list[tuple[str, float]]:
    slot = next(e for e in site.evses if e.key == evse)
    out = []
    for circuit in site.path(slot.circuit):
        out += [(f"{circuit}/{p}", 1.0) for p in phases if f"{circuit}/{p}" in limits]
        if f"{circuit}/W" in limits:
            out.append((f"{circuit}/W", site.voltage_v * len(phases)))
    return out


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_properties(
    case: tuple[Site, list[Demand], frozenset[str], Policy, dict[str, CircuitLimit]],
) -> None:
    site, demands, offline, policy, extra = case
    plan = balance(site, demands, policy=policy, limits=extra, offline=offline, now=NOW, step_a=0)
    limits = _limits(site, extra)
    load = _loads(site, plan, offline, demands)
    assert {a.evse for a in plan.allocations} == {d.evse for d in demands}
    overloaded = set(plan.overloaded)
    for name, cap in limits.items():
        assert load[name] <= cap + TOL * max(1.0, cap) or name in overloaded, name
    by_evse = {d.evse: d for d in demands}
    for a in plan.allocations:
        demand = by_evse[a.evse]
        slot = next(e for e in site.evses if e.key == a.evse)
        if a.state == "fixed":
            assert not slot.smart or slot.key in offline
            assert a.current_a == slot.fallback_a
            continue
        low, high = _bounds(site, demand)
        terms = _terms(site, a.evse, a.phases, limits)
        slack = {n: limits[n] - load[n] for n, _ in terms}
        if a.state == "paused":
            assert a.current_a == 0
            if high >= low and high > 0:  # paused for want of room: its minimum does not fit
                assert any(
                    slack[n] < coef * low - TOL * max(1.0, limits[n]) for n, coef in terms
                ), a
            continue
        assert low - TOL <= a.current_a <= high + TOL, a
        if any(n in overloaded for n, _ in terms):
            continue
        if a.current_a < high - TOL:  # below its maximum: some limit it loads is full
            assert any(slack[n] <= TOL * max(1.0, limits[n]) for n, _ in terms), (a, slack)

    shuffled = demands[:]
    random.Random(7).shuffle(shuffled)  # noqa: S311 (an order, not a secret)
    again = balance(site, shuffled, policy=policy, limits=extra, offline=offline, now=NOW, step_a=0)
    assert again == plan

    rounded = balance(site, demands, policy=policy, limits=extra, offline=offline, now=NOW)
    load = _loads(site, rounded, offline, demands)
    for name, cap in limits.items():
        assert load[name] <= cap + TOL * max(1.0, cap) or name in overloaded, name
    for exact, step in zip(plan.allocations, rounded.allocations, strict=True):
        assert step.current_a <= exact.current_a + TOL
        assert exact.current_a - step.current_a < 0.1 + TOL
        if step.state == "charging":
            low, _ = _bounds(site, by_evse[step.evse])
            assert (
                step.current_a == low or abs(step.current_a * 10 - round(step.current_a * 10)) < TOL
            )


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_fixed_currents_are_counted_whatever_the_demand(
    case: tuple[Site, list[Demand], frozenset[str], Policy, dict[str, CircuitLimit]],
    data: st.DataObject,
) -> None:
    """An EVSE named in ``fixed`` (a station that kept an earlier schedule) loads its circuits
    at the current given, car or not, and the others share what is left within every limit."""
    site, demands, offline, policy, extra = case
    keys = sorted(e.key for e in site.evses)
    chosen = data.draw(st.sets(st.sampled_from(keys))) if keys else set()
    fixed = {k: data.draw(st.floats(0, 40)) for k in sorted(chosen)}
    plan = balance(
        site, demands, policy=policy, limits=extra, offline=offline, fixed=fixed, now=NOW
    )
    load = _loads(site, plan, offline, demands, fixed)
    overloaded = set(plan.overloaded)
    for name, cap in _limits(site, extra).items():
        assert load[name] <= cap + TOL * max(1.0, cap) or name in overloaded, name
    for a in plan.allocations:
        if a.evse in fixed:
            assert (a.state, a.current_a) == ("fixed", fixed[a.evse])


# --- the policies by hand -------------------------------------------------------------------


def _site(grid_a: float, n: int, **slot: object) -> Site:
    evses = tuple(EvseSlot(f"S{i}", 1, "grid", **slot) for i in range(n))  # type: ignore[arg-type]
    return Site("s", (Circuit("grid", None, grid_a),), evses)


def _currents(plan: Plan) -> list[float]:
    return [a.current_a for a in plan.allocations]


def test_equal_share_uses_what_one_car_leaves() -> None:
    site = _site(50, 3)
    demands = [Demand(f"S{i}/1", since=NOW + timedelta(minutes=i)) for i in range(3)]
    assert _currents(balance(site, demands)) == [16.6, 16.6, 16.6]
    slow = Demand("S0/1", measured_a=5.0, offered_a=16.6, since=NOW)
    assert _currents(balance(site, [slow, *demands[1:]])) == [7.0, 21.5, 21.5]


def test_pause_rather_than_below_the_minimum() -> None:
    site = _site(20, 4)
    demands = [Demand(f"S{i}/1", since=NOW + timedelta(minutes=i)) for i in range(4)]
    plan = balance(site, demands)
    assert [(a.state, a.current_a) for a in plan.allocations] == [
        ("charging", 6.6),
        ("charging", 6.6),
        ("charging", 6.6),
        ("paused", 0.0),  # the last to arrive
    ]
    assert plan.allocations[3].reason == "no room for its minimum current"


def test_first_come_priority_departure() -> None:
    site = _site(40, 3)
    demands = [
        Demand("S0/1", since=NOW + timedelta(minutes=2), priority=2),
        Demand("S1/1", since=NOW, energy_wh=3 * 230 * 6 * 4, departure=NOW + timedelta(hours=4)),
        Demand(
            "S2/1",
            since=NOW + timedelta(minutes=1),
            energy_wh=3 * 230 * 12 * 4,
            departure=NOW + timedelta(hours=4),
        ),
    ]
    assert _currents(balance(site, demands, policy=Policy.FIRST_COME)) == [6.0, 28.0, 6.0]
    assert _currents(balance(site, demands, policy=Policy.PRIORITY)) == [28.0, 6.0, 6.0]
    # S1 needs 6 A, S2 12 A, S0 did not say (so its maximum, 32 A): above their 6 A minimums
    # they share the 22 A left as 32 : 6 : 12
    assert _currents(balance(site, demands, policy=Policy.DEPARTURE, now=NOW)) == [20.0, 8.6, 11.2]


def test_rotated_phases_and_single_phase_cars() -> None:
    site = Site(
        "s",
        (Circuit("grid", None, 16.0),),
        (
            EvseSlot("A", 1, "grid", Wiring.parse("L1L2L3")),
            EvseSlot("B", 1, "grid", Wiring.parse("L2L3L1")),
            EvseSlot("C", 1, "grid", Wiring.parse("L3L1L2")),
        ),
    )
    demands = [Demand(k, phases=1) for k in ("A/1", "B/1", "C/1")]
    plan = balance(site, demands)
    assert [(a.phases, a.current_a) for a in plan.allocations] == [
        (("L1",), 16.0),
        (("L2",), 16.0),
        (("L3",), 16.0),
    ]


def test_offline_and_dumb_stations_count_at_their_fallback() -> None:
    site = Site(
        "s",
        (Circuit("grid", None, 32.0), Circuit("garage", "grid", 20.0)),
        (
            EvseSlot("A", 1, "garage"),
            EvseSlot("B", 1, "garage", smart=False, fallback_a=10.0),
            EvseSlot("C", 1, "grid", fallback_a=8.0),
        ),
    )
    plan = balance(site, [Demand("A/1"), Demand("C/1")], offline=frozenset({"C/1"}))
    assert [(a.evse, a.state, a.current_a) for a in plan.allocations] == [
        ("A/1", "charging", 10.0),
        ("C/1", "fixed", 8.0),
    ]
    low = balance(site, [Demand("A/1")], limits={"grid": CircuitLimit(limit_w=230 * 3 * 14)})
    # 14 A worth of power, B's fallback takes 10 A of it: 4 A left, below A's 6 A minimum
    assert (low.allocations[0].state, low.overloaded) == ("paused", ())


def test_refusals() -> None:
    with pytest.raises(SiteError, match="exactly one grid connection"):
        Site("s", (Circuit("a", None), Circuit("b", None)))
    with pytest.raises(SiteError, match="loop"):
        Site("s", (Circuit("a", None), Circuit("b", "c"), Circuit("c", "b")))
    with pytest.raises(SiteError, match="phase wiring"):
        Wiring.parse("L1L1L2")
    with pytest.raises(SiteError, match="no EVSE"):
        balance(_site(10, 1), [Demand("X/1")])
