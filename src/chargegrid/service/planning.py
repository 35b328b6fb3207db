"""What the load balancer plans from, and the planning itself: a snapshot of a site's cars,
limits and prices over the next hours taken on the event loop, turned into a plan for each
moment (run on a thread, as it may take a while).

Every policy but ``cost`` runs the balancer (:func:`chargegrid.domain.balancing.balance`) at
each moment the limits change: what each car gets then. ``cost`` plans the whole horizon at
once (:func:`chargegrid.domain.optimizing.optimize`): each car's current in each quarter hour,
so that it gets its energy by its departure at the least cost within every limit; with no car to
plan, or a solver that fails, it falls back to the balancer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from chargegrid.domain import optimizing
from chargegrid.domain.balancing import Allocation, CircuitLimit, Demand, Plan, balance
from chargegrid.domain.site import Policy, Site

log = structlog.get_logger(__name__)

COST_TIME_LIMIT_S = 5.0  # the solver's; its best plan so far after that (never below full power)


def _covers(start: datetime | None, end: datetime | None, moment: datetime) -> bool:
    """Whether ``moment`` is in [start, end), a bound of None being open."""
    return (start is None or start <= moment) and (end is None or moment < end)


@dataclass(frozen=True, slots=True)
class LimitBlock:
    """A limit on a circuit from ``start`` (None: already) to ``end`` (None: until changed)."""

    circuit: str
    limit: CircuitLimit
    start: datetime | None = None
    end: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return _covers(self.start, self.end, moment)


@dataclass(frozen=True, slots=True)
class PriceBlock:
    """An energy price from ``start`` (None: already) to ``end`` (None: until changed), from a
    grid operator's price signal or a tariff: what the ``cost`` policy plans against."""

    price_per_kwh: float
    currency: str = ""
    start: datetime | None = None
    end: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return _covers(self.start, self.end, moment)


@dataclass(frozen=True, slots=True)
class Moment:
    """From ``start`` on: the limits in force besides the circuits' own, and the EVSEs the
    balancer cannot steer with the current each is counted at."""

    start: datetime
    limits: dict[str, CircuitLimit]
    fixed: dict[str, float]


@dataclass(frozen=True, slots=True)
class Inputs:
    site: Site
    demands: list[Demand]
    offline: frozenset[str]
    headroom_a: float
    moments: list[Moment]
    end: datetime  # of the horizon
    prices: tuple[PriceBlock, ...] = ()  # in the order set: the last that covers wins


def plan(inputs: Inputs) -> list[tuple[datetime, Plan]]:
    """A plan from each moment on (the first is now)."""
    if inputs.site.policy is Policy.COST and inputs.demands:
        try:
            return _optimized(inputs)
        except Exception:  # a solver failure must not stop the cars: the balancer then
            log.exception("cost planning failed: shared equally", site=inputs.site.id)
    return [
        (
            moment.start,
            balance(
                inputs.site,
                inputs.demands,
                limits=moment.limits,
                offline=inputs.offline,
                fixed=moment.fixed,
                now=moment.start,
                headroom_a=inputs.headroom_a,
            ),
        )
        for moment in inputs.moments
    ]


def price_at(prices: Sequence[PriceBlock], moment: datetime) -> float | None:
    found = None
    for block in prices:
        if block.covers(moment):
            found = block.price_per_kwh
    return found


def _optimized(inputs: Inputs) -> list[tuple[datetime, Plan]]:
    edges = {e for b in inputs.prices for e in (b.start, b.end) if e is not None}
    edges |= {d.departure for d in inputs.demands if d.departure is not None}
    intervals = optimizing.periods(
        [(m.start, m.limits) for m in inputs.moments],
        inputs.end,
        lambda moment: price_at(inputs.prices, moment),
        moments=edges,
    )
    fixed: dict[str, float] = {}
    for moment in inputs.moments:  # the optimizer counts them the same throughout: the most
        for key, current in moment.fixed.items():
            fixed[key] = max(fixed.get(key, 0.0), current)
    schedule = optimizing.optimize(
        inputs.site,
        inputs.demands,
        intervals,
        offline=inputs.offline,
        fixed=fixed,
        headroom_a=inputs.headroom_a,
        time_limit_s=COST_TIME_LIMIT_S,
    )
    if not schedule.optimal:
        log.info("cost plan not proved optimal", site=inputs.site.id, status=schedule.status)
    plans = []
    for t, (start, _) in enumerate(schedule.intervals):
        allocations = []
        for car in schedule.cars:
            current = car.currents_a[t]
            if car.state == "fixed":
                reason = "station offline" if car.evse in inputs.offline else "not steered now"
                allocations.append(Allocation(car.evse, current, car.phases, "fixed", reason))
            elif current > 0:
                allocations.append(Allocation(car.evse, current, car.phases, "charging"))
            else:
                why = "charges in cheaper or freer hours" if car.energy_wh > 0 else "needs nothing"
                allocations.append(Allocation(car.evse, 0.0, car.phases, "paused", why))
        over = tuple(name for i, name in schedule.overloaded if i == t)
        plans.append((start, Plan(tuple(sorted(allocations, key=lambda a: a.evse)), over)))
    return plans or [(inputs.moments[0].start, Plan(()))]
