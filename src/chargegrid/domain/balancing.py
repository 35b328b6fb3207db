"""Dynamic load balancing as a pure function of the site, the cars that want to charge and the
limits in force: each car gets a current per phase (A) that keeps every circuit and phase within
its limits, or is paused.

The rules, in the order they are applied:

1. **Fixed loads first.** An EVSE the balancer cannot steer now may draw a current of its own,
   counted on every phase it is wired to, car or not: its ``fallback_a`` when its station is
   offline or takes no charging profiles, or the current the caller names in ``fixed`` (a
   station still holding an earlier schedule, say, or one that refused its new one). A limit
   the fixed loads alone exceed is reported in :attr:`Plan.overloaded`.
2. **What each car can take.** Between the higher of the EVSE's and the car's minimum (6 A for AC
   unless configured) and the lowest of the EVSE's and the car's maximum. A car drawing
   (``measured_a``) clearly less than it was offered (``offered_a``, by more than the headroom)
   is capped at what it draws plus the headroom, so what it leaves goes to the others.
3. **Who charges.** Cars are admitted at their minimum one by one in the policy's order while
   every limit they load still has room; the others are paused rather than given less than
   their minimum. A paused car could not have its minimum without going over a limit.
4. **Sharing the rest** by the operator's policy: ``equal`` (max-min fair: every car the same
   current where its limits and maximum allow), ``first_come`` (in order of arrival, each as much
   as fits), ``priority`` (priority groups, highest first, equal within a group) or
   ``departure`` (above each car's minimum, in proportion to the current it needs to get its
   energy by its departure time). Whatever policy, no car is left below its maximum while every
   limit it loads has room.
5. **Rounded down** to ``step_a`` (0.1 A), never below the minimum.

Ties are broken by EVSE key, so the result depends on nothing but the input. Sharing is a
progressive filling computed with numpy: a level rises, each car's current follows it (scaled
by its weight) between its minimum and maximum, and cars stop when they reach their maximum or a
limit they load is full. Events are taken in batches, so the work grows with the number of
limits that fill up, not the number of cars.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from chargegrid.domain.site import SITE_PHASES, EvseSlot, Policy, Site, SiteError

_EPS = 1e-7


@dataclass(frozen=True, slots=True)
class Demand:
    """A car at an EVSE that wants to charge."""

    evse: str  # EvseSlot.key
    phases: int = 3  # phases the car draws on
    max_a: float | None = None
    min_a: float | None = None
    measured_a: float | None = None  # highest phase current it draws now
    offered_a: float | None = None  # what it was last allowed
    priority: int = 0  # higher first, for Policy.PRIORITY
    since: datetime | None = None  # session start, for the order of arrival
    energy_wh: float | None = None  # still needed, for Policy.DEPARTURE
    departure: datetime | None = None


@dataclass(frozen=True, slots=True)
class CircuitLimit:
    """A limit in force besides the circuit's own (from the grid operator, say); the lower wins.
    ``limit_a`` holds on each phase, ``phase_a`` on one phase each (L1, L2, L3; None: no limit
    of its own), ``limit_w`` on the phases together."""

    limit_a: float | None = None
    limit_w: float | None = None
    phase_a: tuple[float | None, float | None, float | None] = (None, None, None)

    def __and__(self, other: CircuitLimit) -> CircuitLimit:
        """Both limits at once: the lower of each."""
        return CircuitLimit(
            _lowest(self.limit_a, other.limit_a),
            _lowest(self.limit_w, other.limit_w),
            (
                _lowest(self.phase_a[0], other.phase_a[0]),
                _lowest(self.phase_a[1], other.phase_a[1]),
                _lowest(self.phase_a[2], other.phase_a[2]),
            ),
        )


@dataclass(frozen=True, slots=True)
class Allocation:
    evse: str
    current_a: float  # per phase; 0 when paused
    phases: tuple[str, ...]  # site phases loaded
    state: str  # "charging", "paused" or "fixed" (offline or no smart charging: its fallback)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    allocations: tuple[Allocation, ...]
    overloaded: tuple[str, ...] = ()  # limits the fixed loads alone exceed, e.g. "grid/L1"

    def of(self, evse: str) -> Allocation | None:
        return next((a for a in self.allocations if a.evse == evse), None)


class Limits:
    """The constraints: one per circuit and phase with a current limit, one per circuit with a
    power limit, each the lowest of the circuit's own and ``extra``'s; each car's terms are
    (constraint, coefficient per ampere). Shared with the cost-optimising schedules
    (:mod:`chargegrid.domain.optimizing`)."""

    def __init__(self, site: Site, extra: Mapping[str, CircuitLimit]) -> None:
        self.site = site
        self.names: list[str] = []
        self.cap: list[float] = []
        self.index: dict[tuple[str, int], int] = {}  # phase -1: power
        for circuit in sorted(site.circuits, key=lambda c: c.id):
            more = extra.get(circuit.id, CircuitLimit())
            amps = _lowest(circuit.limit_a, more.limit_a)
            watts = _lowest(circuit.limit_w, more.limit_w)
            for phase, name in enumerate(SITE_PHASES):
                cap = _lowest(amps, more.phase_a[phase])
                if cap is not None:
                    self._add(circuit.id, phase, f"{circuit.id}/{name}", cap)
            if watts is not None:
                self._add(circuit.id, -1, f"{circuit.id}/W", watts)
        self.paths = site.paths()

    def _add(self, circuit: str, phase: int, name: str, cap: float) -> None:
        self.index[(circuit, phase)] = len(self.cap)
        self.names.append(name)
        self.cap.append(cap)

    def terms(self, circuit: str, phases: tuple[int, ...]) -> list[tuple[int, float]]:
        out: list[tuple[int, float]] = []
        power = self.site.voltage_v * len(phases)
        for node in self.paths[circuit]:
            for phase in phases:
                k = self.index.get((node, phase))
                if k is not None:
                    out.append((k, 1.0))
            k = self.index.get((node, -1))
            if k is not None:
                out.append((k, power))
        return out


def by_evse(site: Site, demands: Iterable[Demand]) -> dict[str, Demand]:
    """The demands by EVSE key; :class:`SiteError` for one on an EVSE the site does not have,
    or two on the same EVSE."""
    keys = {e.key for e in site.evses}
    wanted: dict[str, Demand] = {}
    for demand in demands:
        if demand.evse not in keys:
            raise SiteError(f"no EVSE {demand.evse} at site {site.id}")
        if demand.evse in wanted:
            raise SiteError(f"two demands for EVSE {demand.evse}")
        wanted[demand.evse] = demand
    return wanted


def bounds(slot: EvseSlot, demand: Demand, headroom_a: float) -> tuple[float, float]:
    """The lowest and highest current (A per phase) the car may be given (rule 2); it cannot
    charge when the highest is below the lowest or 0."""
    low = max(slot.min_a, demand.min_a or 0.0)
    high = min(slot.max_a, math.inf if demand.max_a is None else demand.max_a)
    if (
        demand.measured_a is not None
        and demand.offered_a is not None
        and demand.measured_a < demand.offered_a - headroom_a
    ):
        high = min(high, max(demand.measured_a + headroom_a, low))
    return low, high


def _lowest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


@dataclass(slots=True)
class _Car:
    key: str
    terms: list[tuple[int, float]]
    phases: tuple[int, ...]
    low: float
    high: float
    weight: float
    rank: tuple[object, ...]
    group: int
    active: bool = False
    reason: str = ""


def balance(
    site: Site,
    demands: Iterable[Demand],
    *,
    policy: Policy | None = None,
    limits: Mapping[str, CircuitLimit] | None = None,
    offline: frozenset[str] = frozenset(),
    fixed: Mapping[str, float] | None = None,
    now: datetime | None = None,
    headroom_a: float = 2.0,
    step_a: float = 0.1,
) -> Plan:
    """Currents for ``demands`` at ``site``; see the module's documentation. ``policy`` is the
    site's unless given; ``offline`` EVSEs are counted at their fallback and ``fixed`` ones
    (EVSE key -> A) at the current given, whether a car is there or not; ``step_a`` 0 keeps
    exact values."""
    fixed = fixed or {}
    policy = policy or site.policy
    slots = {e.key: e for e in site.evses}
    wanted = by_evse(site, demands)
    table = Limits(site, limits or {})
    load = [0.0] * len(table.cap)
    allocations: dict[str, Allocation] = {}
    for slot in sorted(site.evses, key=lambda e: e.key):
        if slot.key in fixed:
            current = fixed[slot.key]
            reason = "station offline" if slot.key in offline else "earlier profile in force"
        elif not slot.smart:
            current, reason = slot.fallback_a, "no smart charging"
        elif slot.key in offline:
            current, reason = slot.fallback_a, "station offline"
        else:
            continue
        for k, coef in table.terms(slot.circuit, slot.wiring.phases):
            load[k] += coef * current
        if slot.key in wanted:
            names = tuple(SITE_PHASES[p] for p in slot.wiring.phases)
            allocations[slot.key] = Allocation(slot.key, current, names, "fixed", reason)
    overloaded = tuple(
        n for n, c, x in zip(table.names, table.cap, load, strict=True) if x > c + _EPS
    )

    cars: list[_Car] = []
    for key in sorted(wanted):
        if key in allocations:
            continue
        demand, slot = wanted[key], slots[key]
        phases = slot.wiring.used_by(demand.phases)
        low, high = bounds(slot, demand, headroom_a)
        weight = _weight(demand, high, len(phases), site.voltage_v, now)
        since = (demand.since.timestamp() if demand.since else math.inf, key)
        rank: tuple[object, ...]
        if policy is Policy.PRIORITY:
            rank = (-demand.priority, *since)
        elif policy is Policy.DEPARTURE:
            rank = (-weight / high if high > 0 else 0.0, *since)
        else:
            rank = since
        car = _Car(key, table.terms(slot.circuit, phases), phases, low, high, weight, rank, 0)
        car.group = -demand.priority if policy is Policy.PRIORITY else 0
        cars.append(car)

    # who charges: admitted at the minimum in the policy's order while it fits
    cap = table.cap
    for car in sorted(cars, key=lambda c: c.rank):
        if car.high < car.low or car.high <= 0:
            car.reason = "its maximum is below its minimum"
            continue
        if all(load[k] + coef * car.low <= cap[k] + _EPS for k, coef in car.terms):
            car.active = True
            for k, coef in car.terms:
                load[k] += coef * car.low
        else:
            car.reason = "no room for its minimum current"

    currents = _share(cars, load, cap, policy)
    for car, current in zip(cars, currents, strict=True):
        names = tuple(SITE_PHASES[p] for p in car.phases)
        if not car.active:
            allocations[car.key] = Allocation(car.key, 0.0, names, "paused", car.reason)
            continue
        if step_a > 0:  # the 1e-6 step forgives float noise (16.599999... is 16.6)
            stepped = round(math.floor(current / step_a + 1e-6) * step_a, 6)
            current = car.low if stepped < car.low else stepped
        allocations[car.key] = Allocation(car.key, min(current, car.high), names, "charging")
    ordered = tuple(allocations[k] for k in sorted(allocations))
    return Plan(ordered, overloaded)


def _weight(
    demand: Demand, high: float, phases: int, voltage: float, now: datetime | None
) -> float:
    """The current the car needs to get its energy by its departure; its maximum if it did not
    say, or if that time is past."""
    if demand.energy_wh is None or demand.departure is None or now is None:
        return max(high, _EPS) if math.isfinite(high) else 1.0
    hours = (demand.departure - now).total_seconds() / 3600
    if hours <= 0:
        return max(high, _EPS) if math.isfinite(high) else 1.0
    need = demand.energy_wh / hours / (voltage * phases)
    return max(min(need, high), 0.01)


def _share(
    cars: Sequence[_Car], load: list[float], cap: list[float], policy: Policy
) -> list[float]:
    """Each car's current once the capacity above the admitted minimums is shared."""
    current = np.array([c.low if c.active else 0.0 for c in cars], dtype=np.float64)
    if not cars:
        return []
    if policy is Policy.FIRST_COME:
        for i in sorted(range(len(cars)), key=lambda i: cars[i].rank):
            car = cars[i]
            if not car.active:
                continue
            room = car.high - car.low
            for k, coef in car.terms:
                room = min(room, max(cap[k] - load[k], 0.0) / coef)
            current[i] += room
            for k, coef in car.terms:
                load[k] += coef * room
        return [float(x) for x in current]
    con = np.array([k for c in cars for k, _ in c.terms], dtype=np.int64)
    who = np.array([i for i, c in enumerate(cars) for _ in c.terms], dtype=np.int64)
    coefs = np.array([x for c in cars for _, x in c.terms], dtype=np.float64)
    low = np.array([c.low for c in cars], dtype=np.float64)
    high = np.array([c.high for c in cars], dtype=np.float64)
    active = np.array([c.active for c in cars])
    weight = np.array(
        [c.weight if policy is Policy.DEPARTURE else 1.0 for c in cars], dtype=np.float64
    )
    limit = np.array(cap, dtype=np.float64)
    used = np.array(load, dtype=np.float64)
    groups = sorted({c.group for c in cars}) if policy is Policy.PRIORITY else [0]
    group_of = np.array([c.group for c in cars])
    if policy is Policy.DEPARTURE:  # above the minimum, in proportion to the need
        start, top = np.zeros(len(cars)), (high - low) / weight
    else:  # max-min fair: a car rises once the level passes its minimum
        start, top = low / weight, high / weight
    for group in groups:
        rising = active & (group_of == group) & (current < high - _EPS)
        _fill(rising, current, high, weight, start, top, used, limit, con, who, coefs)
    return [float(x) for x in current]


def _fill(
    rising: npt.NDArray[np.bool_],
    current: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    weight: npt.NDArray[np.float64],
    start: npt.NDArray[np.float64],
    top: npt.NDArray[np.float64],
    used: npt.NDArray[np.float64],
    caps: npt.NDArray[np.float64],
    con: npt.NDArray[np.int64],
    who: npt.NDArray[np.int64],
    coef: npt.NDArray[np.float64],
) -> None:
    """Progressive filling of the ``rising`` cars: a car's current rises at its weight times
    the level's once the level passes its ``start``, and stops at its maximum (reached at level
    ``top``) or when a limit it loads is full. Updates ``current`` and ``used``."""
    level = 0.0
    size = len(caps)
    for _ in range(4 * len(current) + 4 * size + 8):
        if not rising.any():
            return
        moving = rising & (start <= level + _EPS)
        rate = np.where(moving, weight, 0.0)
        growth = np.bincount(con, weights=coef * rate[who], minlength=size)
        slack = caps - used
        filling = growth > _EPS
        until_full = np.min(slack[filling] / growth[filling]) if filling.any() else math.inf
        waiting = rising & ~moving
        until_start = float(np.min(start[waiting]) - level) if waiting.any() else math.inf
        step = max(min(until_full, until_start), 0.0)
        done = moving & (top - level <= step + _EPS)
        if done.any():  # they reach their maximum before any limit fills: exact
            used += np.bincount(
                con, weights=coef * (high - current)[who] * done[who], minlength=size
            )
            current[done] = high[done]
            rising &= ~done
            continue
        if math.isinf(step):
            return
        level += step
        current[moving] += weight[moving] * step
        used += growth * step
        full = filling & (caps - used <= _EPS * np.maximum(1.0, caps))
        if full.any():
            rising[who[full[con]]] = False
    raise AssertionError("progressive filling did not converge")  # pragma: no cover
