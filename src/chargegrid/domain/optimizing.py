"""Cost-aware charging schedules: given the limits in force over the next hours (a capacity
forecast) and the energy price in each interval, plan each car's current interval by interval
so that it gets its energy by its departure at the least cost, within every limit. A linear
program with semi-continuous currents, solved by HiGHS (``highspy``).

The rules:

1. **Within every limit, at every moment.** In each interval, every circuit's current limit on
   each phase and its power limit (the same constraint table as the balancer's,
   :class:`~chargegrid.domain.balancing.Limits`) hold with the fixed loads counted first:
   offline EVSEs and those without smart charging at their fallback current, ``fixed`` ones at
   the current given, car or not. A limit the fixed loads alone exceed leaves 0 to the cars
   and is reported in :attr:`Schedule.overloaded`.
2. **Between minimum and maximum, or paused.** A car's current in an interval is 0 or between
   its minimum and maximum (:func:`~chargegrid.domain.balancing.bounds`): a semi-continuous
   variable. The relaxation (any current from 0) is solved first, as a lower bound; a dive
   then settles the currents below a minimum one at a time (raised to it if the rest still
   fits, else paused, solving again each time); HiGHS's branch and cut starts from that plan
   only when it is not within :data:`MIP_GAP` of the bound. Branch and cut alone took 19 s
   for 50 cars over a day, almost all of it in cuts at the root before it found a plan; this
   way 0.6 s, proved within the gap.
3. **Only while it is there.** From its arrival (``Demand.since``; already there if None or
   past) to its departure (the end of the plan if None). A car that comes or goes within an
   interval holds its current for the whole interval, as far as the limits go, and gets energy
   only for the time it is there.
4. **Never more than it needs.** A car's energy (``Demand.energy_wh``, still needed; None: as
   much as it can take) is a bound; a car may take less than its current would give in an
   interval (it is full), so a need smaller than one interval at the minimum current is met.
5. **Least cost, most energy first.** The objective is the cost of the energy plus a penalty
   per kWh short of each car's need, :data:`SHORTFALL_WEIGHT` (1,000) times the dearest price
   of the plan: a plan gives up a kWh only to save more than a thousand times the dearest
   price, so a day that cannot meet every need still delivers the most energy, and the least
   cost decides among plans that deliver it. An interval without a price counts at the dearest
   price of the plan, so the plan never bets on an unknown price; with no price at all, energy
   is all that counts. Ties are broken toward charging earlier (a cost of at most 10⁻⁴ times
   the dearest price per kWh, rising with time).
6. **Rounded down** to ``step_a`` (0.1 A), never below the minimum; the plan keeps one step
   below each limit for it, so a car left short by the rounding is raised by steps where every
   limit still has room, cheapest intervals first. A car can still end a few watt-hours short
   when every interval it is there is full.

HiGHS runs on one thread with a fixed seed, so the result depends on nothing but the input,
unless ``time_limit_s`` stops it first: then the best plan found is returned with
:attr:`Schedule.optimal` False. The full-power plan (:func:`full_power`) is taken if it is
better, so even a plan cut short is never worse than charging every car at its maximum.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import highspy
import numpy as np
import numpy.typing as npt

from chargegrid.domain.balancing import (
    CircuitLimit,
    Demand,
    Limits,
    balance,
    bounds,
    by_evse,
)
from chargegrid.domain.site import SITE_PHASES, EvseSlot, Policy, Site

SHORTFALL_WEIGHT = 1_000.0  # a kWh short costs this many times the dearest price
EARLY_WEIGHT = 1e-4  # ... and a kWh in the last interval this much more than in the first
QUARTER_HOUR = timedelta(minutes=15)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIP_GAP = 1e-4  # optimal: within 0.01 % of the cost of the energy asked for at the dearest price
_EPS = 1e-6
_SEMI = highspy.HighsVarType.kSemiContinuous
_FEASIBLE = 2  # HiGHS's kSolutionStatusFeasible


class ScheduleError(ValueError):
    """Intervals that cannot be planned over (not in order, or empty)."""


class Interval(NamedTuple):
    """From ``start`` to ``end``: the limits in force besides the circuits' own, and the price
    of energy (per kWh, any currency; None: unknown)."""

    start: datetime
    end: datetime
    limits: Mapping[str, CircuitLimit]
    price_per_kwh: float | None = None


IntervalLike = tuple[datetime, datetime, Mapping[str, CircuitLimit], float | None]


@dataclass(frozen=True, slots=True)
class CarSchedule:
    evse: str
    currents_a: tuple[float, ...]  # per phase, one per interval; 0 when paused or away
    energies_wh: tuple[float, ...]  # planned, one per interval; 0 for a fixed EVSE
    phases: tuple[str, ...]  # site phases loaded
    need_wh: float | None  # what the car still needed; None: as much as it can take
    cost: float  # of its planned energy, in the intervals with a price
    state: str  # "planned", "idle" (nothing planned) or "fixed" (not steered: its fallback)

    @property
    def energy_wh(self) -> float:
        return sum(self.energies_wh)


@dataclass(frozen=True, slots=True)
class Schedule:
    intervals: tuple[tuple[datetime, datetime], ...]
    cars: tuple[CarSchedule, ...]
    energy_wh: float
    cost: float
    optimal: bool  # the solver proved the plan optimal (before rounding)
    status: str  # the solver's word for how it ended
    overloaded: tuple[tuple[int, str], ...] = ()  # (interval, limit) the fixed loads exceed

    def of(self, evse: str) -> CarSchedule | None:
        return next((c for c in self.cars if c.evse == evse), None)


def periods(
    limits: Sequence[tuple[datetime, Mapping[str, CircuitLimit]]],
    end: datetime,
    price: Callable[[datetime], float | None] | None = None,
    *,
    step: timedelta = QUARTER_HOUR,
    moments: Iterable[datetime] = (),
) -> list[Interval]:
    """The intervals to plan over, from what a service has: the limits from each moment on
    (each in force until the next moment, the last until ``end``), cut at every ``step`` of
    the clock (quarter hours from midnight UTC) and at ``moments`` (where prices change, cars
    arrive or leave), each with ``price`` at its start."""
    if not limits:
        return []
    cuts = {m for m, _ in limits} | {m for m in moments if limits[0][0] < m < end}
    start = limits[0][0]
    tick = _EPOCH + ((start - _EPOCH) // step + 1) * step
    while tick < end:
        cuts.add(tick)
        tick += step
    edges = sorted(c for c in cuts if c < end)
    out: list[Interval] = []
    k = 0
    for i, moment in enumerate(edges):
        while k + 1 < len(limits) and limits[k + 1][0] <= moment:
            k += 1
        stop = edges[i + 1] if i + 1 < len(edges) else end
        out.append(Interval(moment, stop, limits[k][1], price(moment) if price else None))
    return out


@dataclass(slots=True)
class _Car:
    demand: Demand
    slot: EvseSlot
    phases: tuple[int, ...]
    low: float
    high: float
    need_kwh: float  # inf: as much as it can take
    hours: list[float]  # time there in each interval
    kwh_per_a: list[float]  # energy one ampere per phase gives in each interval
    terms: list[list[tuple[int, float]]] = field(default_factory=list)  # per interval, rows


@dataclass(slots=True)
class _Problem:
    intervals: list[IntervalLike]
    cars: list[_Car]
    cap: list[list[float]]  # room left by the fixed loads, per interval and constraint
    names: list[list[str]]
    overloaded: list[tuple[int, str]]
    fixed: dict[str, tuple[float, Demand, EvseSlot]]  # EVSE key -> current held, ...
    price: list[float]  # planned with (unknown: the dearest)
    scale: float  # the dearest price's magnitude, 1 without prices


def optimize(
    site: Site,
    cars: Iterable[Demand],
    intervals: Sequence[IntervalLike],
    *,
    offline: frozenset[str] = frozenset(),
    fixed: Mapping[str, float] | None = None,
    headroom_a: float = 2.0,
    step_a: float = 0.1,
    time_limit_s: float = 10.0,
) -> Schedule:
    """The cheapest plan for ``cars`` at ``site`` over ``intervals`` (see the module's
    documentation): each car's current and energy per interval and its cost. ``offline``
    EVSEs count at their fallback current, ``fixed`` ones (EVSE key -> A) at the current
    given, in every interval; ``step_a`` 0 keeps the solver's exact values."""
    problem = _problem(site, cars, intervals, offline, fixed or {}, headroom_a)
    start = _full_power(site, problem, offline, fixed or {}, headroom_a)
    currents, energies, optimal, status = _solve(problem, start, step_a, time_limit_s)
    if step_a > 0:
        currents, energies = _rounded(problem, currents, energies, step_a)
    return _schedule(problem, currents, energies, optimal, status)


def full_power(
    site: Site,
    cars: Iterable[Demand],
    intervals: Sequence[IntervalLike],
    *,
    offline: frozenset[str] = frozenset(),
    fixed: Mapping[str, float] | None = None,
    headroom_a: float = 2.0,
) -> Schedule:
    """What charging without a plan gives, to compare with :func:`optimize`: interval by
    interval, each car that still needs energy at its maximum, shared by :func:`balance`
    (policy ``equal``) when a limit is hit; in the interval it gets full, the current that
    fills it."""
    problem = _problem(site, cars, intervals, offline, fixed or {}, headroom_a)
    currents, energies = _full_power(site, problem, offline, fixed or {}, headroom_a)
    return _schedule(problem, currents, energies, False, "full power")


def _problem(
    site: Site,
    demands: Iterable[Demand],
    intervals: Sequence[IntervalLike],
    offline: frozenset[str],
    fixed: Mapping[str, float],
    headroom_a: float,
) -> _Problem:
    slots = {e.key: e for e in site.evses}
    wanted = by_evse(site, demands)
    for i, (begin, end, _, _) in enumerate(intervals):
        if not begin < end or (i and begin < intervals[i - 1][1]):
            raise ScheduleError(f"interval {i}: each must end after it starts, in order")
    held: dict[str, float] = {}
    for slot in site.evses:
        if slot.key in fixed:
            held[slot.key] = fixed[slot.key]
        elif not slot.smart or slot.key in offline:
            held[slot.key] = slot.fallback_a
    tables: dict[int, Limits] = {}
    cap: list[list[float]] = []
    names: list[list[str]] = []
    overloaded: list[tuple[int, str]] = []
    for t, (_, _, extra, _) in enumerate(intervals):
        table = tables.get(id(extra)) or tables.setdefault(id(extra), Limits(site, extra))
        load = [0.0] * len(table.cap)
        for key in sorted(held):
            slot = slots[key]
            for k, coef in table.terms(slot.circuit, slot.wiring.phases):
                load[k] += coef * held[key]
        for name, c, x in zip(table.names, table.cap, load, strict=True):
            if x > c + _EPS * max(1.0, c):
                overloaded.append((t, name))
        cap.append([max(c - x, 0.0) for c, x in zip(table.cap, load, strict=True)])
        names.append(table.names)
    known = [p for _, _, _, p in intervals if p is not None]
    dearest = max(known) if known else 0.0
    price = [dearest if p is None else p for _, _, _, p in intervals]
    scale = max((abs(p) for p in known), default=0.0) or 1.0
    cars = []
    for key in sorted(wanted):
        if key in held:
            continue
        demand, slot = wanted[key], slots[key]
        phases = slot.wiring.used_by(demand.phases)
        low, high = bounds(slot, demand, headroom_a)
        need = math.inf if demand.energy_wh is None else max(demand.energy_wh, 0.0) / 1000
        hours = [_overlap(demand, b, e) for b, e, _, _ in intervals]
        per_a = site.voltage_v * len(phases) / 1000
        car = _Car(demand, slot, phases, low, high, need, hours, [h * per_a for h in hours])
        for _, _, extra, _ in intervals:
            car.terms.append(tables[id(extra)].terms(slot.circuit, phases))
        cars.append(car)
    fixed_cars = {k: (held[k], wanted[k], slots[k]) for k in sorted(wanted) if k in held}
    return _Problem(list(intervals), cars, cap, names, overloaded, fixed_cars, price, scale)


def _overlap(demand: Demand, begin: datetime, end: datetime) -> float:
    """Hours of [begin, end) the car is there."""
    arrive = begin if demand.since is None else max(begin, demand.since)
    leave = end if demand.departure is None else min(end, demand.departure)
    return max((leave - arrive).total_seconds(), 0.0) / 3600


def _can_charge(car: _Car, t: int) -> bool:
    return car.hours[t] > 0 and car.high > 0 and car.high >= car.low and car.need_kwh > 0


Matrix = list[list[float]]  # per car (in EVSE key order), per interval


def _full_power(
    site: Site,
    problem: _Problem,
    offline: frozenset[str],
    fixed: Mapping[str, float],
    headroom_a: float,
) -> tuple[Matrix, Matrix]:
    """Interval by interval, the balancer over the cars that still need energy, each asking
    its maximum, or in the interval it gets full the current that fills it: currents (A) and
    energies (kWh)."""
    currents = [[0.0] * len(problem.intervals) for _ in problem.cars]
    energies = [[0.0] * len(problem.intervals) for _ in problem.cars]
    left = [car.need_kwh for car in problem.cars]
    for t, (_, _, extra, _) in enumerate(problem.intervals):
        asks = []
        for i, car in enumerate(problem.cars):
            if _can_charge(car, t) and left[i] > _EPS:
                high = min(car.high, max(left[i] / car.kwh_per_a[t], car.low))
                asks.append(replace(car.demand, max_a=high, measured_a=None, offered_a=None))
        if not asks:
            continue
        plan = balance(
            site,
            asks,
            policy=Policy.EQUAL,
            limits=extra,
            offline=offline,
            fixed=fixed,
            headroom_a=headroom_a,
        )
        for i, car in enumerate(problem.cars):
            allocation = plan.of(car.slot.key)
            if allocation is not None and allocation.state == "charging":
                currents[i][t] = allocation.current_a
                energies[i][t] = min(left[i], allocation.current_a * car.kwh_per_a[t])
                left[i] -= energies[i][t]
    return currents, energies


def _solve(
    problem: _Problem, start: tuple[Matrix, Matrix], margin: float, time_limit_s: float
) -> tuple[Matrix, Matrix, bool, str]:
    """The linear program: per car and interval a current x (A, semi-continuous) and an energy
    y (kWh) with y <= x * kWh per A; per car, the sum of y at most its need; per interval and
    constraint, the sum of coefficient * x at most the room the fixed loads leave.

    Solved in up to three steps (rule 2): the relaxation, a lower bound; the dive, which takes
    the current furthest into (0, minimum) first; branch and cut from the dive's plan if that
    is not within the gap. ``start`` (currents, energies) is a plan within every limit, taken
    if the others are worse."""
    n_t = len(problem.intervals)
    cols = {
        (i, t): 2 * n
        for n, (i, t) in enumerate(
            (i, t) for i, car in enumerate(problem.cars) for t in range(n_t) if _can_charge(car, t)
        )
    }  # (car, interval) -> x's column; y's is the next
    currents = [[0.0] * n_t for _ in problem.cars]
    energies = [[0.0] * n_t for _ in problem.cars]
    if not cols:
        return currents, energies, True, "nothing to plan"
    deadline = time.perf_counter() + time_limit_s
    lp, guess = _model(problem, cols, start, margin)
    # within 0.01 % of the energy asked for at the dearest price: a gap relative to the
    # objective would grow with the penalty of a shortfall
    asked = sum(
        min(car.need_kwh, sum(car.high * car.kwh_per_a[t] for t in range(n_t) if (i, t) in cols))
        for i, car in enumerate(problem.cars)
    )
    gap = MIP_GAP * problem.scale * max(asked, 1.0)
    best, objective = guess, _objective(lp, guess)
    bound, values = _relaxed(lp, deadline)
    status = "Time limit reached"
    if values is not None and (found := _objective(lp, values)) < objective:
        best, objective = values, found
    if bound is not None and objective - bound <= gap:
        status = "Optimal"
    elif bound is not None and time.perf_counter() < deadline:
        status, values = _branch_and_cut(lp, best, gap, deadline)
        if values is not None and (found := _objective(lp, values)) <= objective:
            best, objective = values, found
    for (i, t), col in cols.items():
        car = problem.cars[i]
        y = min(max(best[col + 1], 0.0), best[col] * car.kwh_per_a[t])
        if y > _EPS:  # no higher than the energy needs: a full car need not be offered more
            currents[i][t] = max(min(best[col], y / car.kwh_per_a[t]), car.low)
            energies[i][t] = y
    return currents, energies, status == "Optimal", status


def _highs(deadline: float, gap: float = 0.0) -> highspy.Highs:
    solver = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy's __init__ is unannotated
    for option, value in (
        ("output_flag", False),
        ("threads", 1),
        ("random_seed", 0),
        ("mip_rel_gap", 0.0),
        ("mip_abs_gap", gap),
        ("time_limit", max(deadline - time.perf_counter(), 0.0)),
    ):
        solver.setOptionValue(option, value)
    return solver


def _objective(lp: highspy.HighsLp, values: npt.NDArray[np.float64]) -> float:
    return float(lp.offset_ + np.dot(lp.col_cost_, values))


def _relaxed(
    lp: highspy.HighsLp, deadline: float
) -> tuple[float | None, npt.NDArray[np.float64] | None]:
    """The relaxation's optimum (a lower bound), and the plan the dive ends with."""
    semi = [c for c, kind in enumerate(lp.integrality_) if kind == _SEMI]
    low = lp.col_lower_
    high = lp.col_upper_
    solver = _highs(deadline)
    solver.passModel(lp)
    for col in semi:
        solver.changeColIntegrality(col, highspy.HighsVarType.kContinuous)
        solver.changeColBounds(col, 0.0, high[col])
    solver.run()
    if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None, None
    bound = solver.getInfo().objective_function_value
    x = np.array(solver.getSolution().col_value)
    for _ in range(len(semi)):
        below = [c for c in semi if _EPS < x[c] < low[c] - _EPS]
        if not below:
            break
        col = max(below, key=lambda c: (x[c] / low[c], -c))
        for lowest, highest in ((low[col], high[col]), (0.0, 0.0)):  # up if it fits, or pause
            if time.perf_counter() < deadline:
                solver.changeColBounds(col, lowest, highest)
                solver.run()
                if solver.getModelStatus() == highspy.HighsModelStatus.kOptimal:
                    x = np.array(solver.getSolution().col_value)
                    break
        else:  # out of time: pause the rest (x then y, the next column), which always fits
            x[below] = 0.0
            x[[c + 1 for c in below]] = 0.0
            break
    return bound, x


def _branch_and_cut(
    lp: highspy.HighsLp, start: npt.NDArray[np.float64], gap: float, deadline: float
) -> tuple[str, npt.NDArray[np.float64] | None]:
    solver = _highs(deadline, gap)
    solver.passModel(lp)
    solution = highspy.HighsSolution()
    solution.col_value = start
    solver.setSolution(solution)
    solver.run()
    status = solver.modelStatusToString(solver.getModelStatus())
    if solver.getInfo().primal_solution_status != _FEASIBLE:
        return status, None
    return status, np.array(solver.getSolution().col_value)


def _model(
    problem: _Problem, cols: dict[tuple[int, int], int], start: tuple[Matrix, Matrix], margin: float
) -> tuple[highspy.HighsLp, npt.NDArray[np.float64]]:
    n_t = len(problem.intervals)
    first = problem.intervals[0][0]
    span = (problem.intervals[-1][1] - first).total_seconds()
    penalty = SHORTFALL_WEIGHT * problem.scale
    n = len(cols) * 2
    cost = np.zeros(n)
    lower = np.zeros(n)
    upper = np.zeros(n)
    kinds = [highspy.HighsVarType.kContinuous] * n
    guess = np.zeros(n)
    for (i, t), col in cols.items():
        car = problem.cars[i]
        if car.low > 0:
            kinds[col] = _SEMI
            lower[col] = car.low
        upper[col] = car.high
        upper[col + 1] = min(car.need_kwh, car.high * car.kwh_per_a[t])
        early = (problem.intervals[t][0] - first).total_seconds() / span
        cost[col + 1] = problem.price[t] - penalty + EARLY_WEIGHT * problem.scale * early
        guess[col], guess[col + 1] = start[0][i][t], start[1][i][t]
    rows: list[list[tuple[int, float]]] = []
    bound: list[float] = []
    for t in range(n_t):
        entries: dict[int, list[tuple[int, float]]] = {}
        for i, car in enumerate(problem.cars):
            if (i, t) in cols:
                for k, coef in car.terms[t]:
                    entries.setdefault(k, []).append((cols[(i, t)], coef))
        for k in sorted(entries):
            rows.append(entries[k])
            # one step below the limit, so the currents rounded down can give a step back
            bound.append(max(problem.cap[t][k] - margin * max(c for _, c in entries[k]), 0.0))
    offset = 0.0
    for i, car in enumerate(problem.cars):
        mine = [cols[(i, t)] for t in range(n_t) if (i, t) in cols]
        if mine and math.isfinite(car.need_kwh):
            rows.append([(col + 1, 1.0) for col in mine])
            bound.append(car.need_kwh)
            offset += penalty * car.need_kwh  # the objective is then cost + penalty * shortfall
        for t, col in zip((t for t in range(n_t) if (i, t) in cols), mine, strict=True):
            rows.append([(col + 1, 1.0), (col, -car.kwh_per_a[t])])
            bound.append(0.0)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_, lp.offset_ = n, len(rows), offset
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lower, upper
    lp.row_lower_ = np.full(len(rows), -highspy.kHighsInf)
    lp.row_upper_ = np.array(bound)
    lp.integrality_ = kinds
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.cumsum([0] + [len(r) for r in rows])
    lp.a_matrix_.index_ = np.array([c for r in rows for c, _ in r], dtype=np.int32)
    lp.a_matrix_.value_ = np.array([v for r in rows for _, v in r])
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, len(rows)
    return lp, guess


def _rounded(
    problem: _Problem, currents: Matrix, energies: Matrix, step: float
) -> tuple[Matrix, Matrix]:
    """Currents rounded down to ``step`` (never below the minimum), energies cut to match;
    then each car left short of its planned energy raised by steps where every limit it loads
    has room: where it charges already, then where it does not (at its minimum at least),
    cheapest then earliest first."""
    n_t = len(problem.intervals)
    out = [[0.0] * n_t for _ in problem.cars]
    got = [[0.0] * n_t for _ in problem.cars]
    load = [[0.0] * len(c) for c in problem.cap]
    for i, car in enumerate(problem.cars):
        for t in range(n_t):
            x = currents[i][t]
            if x <= 0:
                continue
            x = max(_floor(min(x, _ceil(energies[i][t] / car.kwh_per_a[t], step)), step), car.low)
            out[i][t], got[i][t] = x, min(energies[i][t], x * car.kwh_per_a[t])
            for k, coef in car.terms[t]:
                load[t][k] += coef * x
    for i, car in enumerate(problem.cars):
        short = min(sum(energies[i]), car.need_kwh) - sum(got[i])
        # where it charges already first: elsewhere it would need its minimum
        order = sorted(range(n_t), key=lambda t: (out[i][t] == 0, problem.price[t], t))
        for t in order:
            if short <= _EPS:
                break
            if not _can_charge(car, t):
                continue
            room = car.high
            for k, coef in car.terms[t]:
                room = min(room, out[i][t] + (problem.cap[t][k] - load[t][k]) / coef)
            want = max(_ceil((got[i][t] + short) / car.kwh_per_a[t], step), car.low)
            x = _floor(min(want, room), step)
            if x <= out[i][t] or x < car.low:
                continue
            for k, coef in car.terms[t]:
                load[t][k] += coef * (x - out[i][t])
            more = min(x * car.kwh_per_a[t] - got[i][t], short)
            out[i][t], got[i][t], short = x, got[i][t] + more, short - more
    return out, got


def _floor(value: float, step: float) -> float:
    """Down to ``step``; the 1e-6 forgives float noise (16.599999... is 16.6)."""
    return round(math.floor(value / step + 1e-6) * step, 6)


def _ceil(value: float, step: float) -> float:
    return round(math.ceil(value / step - 1e-6) * step, 6)


def _schedule(
    problem: _Problem, currents: Matrix, energies: Matrix, optimal: bool, status: str
) -> Schedule:
    cars: list[CarSchedule] = []
    for i, car in enumerate(problem.cars):
        names = tuple(SITE_PHASES[p] for p in car.phases)
        cost = sum(
            e * p
            for e, (_, _, _, p) in zip(energies[i], problem.intervals, strict=True)
            if p is not None
        )
        need = None if car.demand.energy_wh is None else car.need_kwh * 1000
        state = "planned" if any(x > 0 for x in currents[i]) else "idle"
        cars.append(
            CarSchedule(
                car.slot.key,
                tuple(currents[i]),
                tuple(e * 1000 for e in energies[i]),
                names,
                need,
                cost,
                state,
            )
        )
    for key, (current, demand, slot) in problem.fixed.items():
        names = tuple(SITE_PHASES[p] for p in slot.wiring.phases)
        there = tuple(
            current if _overlap(demand, b, e) > 0 else 0.0 for b, e, _, _ in problem.intervals
        )
        need = None if demand.energy_wh is None else demand.energy_wh
        cars.append(CarSchedule(key, there, (0.0,) * len(there), names, need, 0.0, "fixed"))
    cars.sort(key=lambda c: c.evse)
    return Schedule(
        tuple((b, e) for b, e, _, _ in problem.intervals),
        tuple(cars),
        sum(c.energy_wh for c in cars),
        sum(c.cost for c in cars),
        optimal,
        status,
        tuple(problem.overloaded),
    )
