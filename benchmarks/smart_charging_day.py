"""A simulated day of cost-aware charging (:mod:`chargegrid.domain.optimizing`) against charging
each car at full power, for one site with 50 cars.

The site: a grid connection whose room for the cars (a capacity forecast in quarter hours, A per
phase) follows what the building beside them leaves, with a dip at the evening peak, and two car
park decks under it; 50 EVSEs, three-phase, 16 or 32 A, wiring rotated from one to the next. The
energy price is a day-ahead curve per hour (cheap at night and over the solar midday, dear in
the morning and at the evening peak). The cars, seeded: 25 come to work (arrive 07:00 to 09:30,
leave 16:00 to 18:30), 10 stop for one to three hours in the day, 15 come home in the evening
and leave before 06:00; one in five charges on one phase; each needs what it could take at full
power in at most 90 % of its stay.

Three ways to run the day, from 06:00 to 06:00, in quarter hours cut where a car comes or goes:

* **full power**, the baseline: interval by interval, each car that still needs energy asks its
  maximum, shared by the balancer (policy ``equal``) when a limit is hit; the car stops when
  full (:func:`~chargegrid.domain.optimizing.full_power`);
* **optimizer, day plan**: one plan for the whole day, every arrival known in advance;
* **optimizer, re-planned**: as a service would run it, a new plan at every arrival over the cars
  there (their energy still needed) to the end of the day, followed until the next arrival.

Figures are ratios against the baseline run in the same script; solver times are wall times on
this machine, for information (no timed assertion).

    python benchmarks/smart_charging_day.py [--seed 1] [--cars 50] [--quick]
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from chargegrid.domain.balancing import CircuitLimit, Demand
from chargegrid.domain.optimizing import Interval, Schedule, full_power, optimize, periods
from chargegrid.domain.site import Circuit, EvseSlot, Site, Wiring

START = datetime(2026, 12, 2, 6, tzinfo=UTC)
END = START + timedelta(hours=24)
QUARTER = timedelta(minutes=15)
ROTATIONS = [Wiring.parse(w) for w in ("L1L2L3", "L2L3L1", "L3L1L2")]
VOLTAGE = 230.0
SERVED_WITHIN_WH = 50.0


@dataclass(frozen=True, slots=True)
class Day:
    site: Site
    cars: list[Demand]  # since: arrival; energy_wh: what it needs on arrival
    forecast: list[tuple[datetime, dict[str, CircuitLimit]]]  # from each quarter hour
    prices: list[float]  # per hour from START

    def price(self, moment: datetime) -> float:
        return self.prices[int((moment - START).total_seconds() // 3600)]

    def intervals(self, start: datetime, cars: list[Demand]) -> list[Interval]:
        limits = [(m, lim) for m, lim in self.forecast if m > start]
        now = max((x for x in self.forecast if x[0] <= start), key=lambda x: x[0])[1]
        edges = [c.since for c in self.cars if c.since] + [c.departure for c in cars if c.departure]
        return periods([(start, now), *limits], END, self.price, moments=edges)


def hours(moment: datetime) -> float:
    return (moment - START).total_seconds() / 3600 + 6.0  # clock time, 6.0 to 30.0


def building_a(clock: float) -> float:
    """What the building beside the car park draws per phase (A) at this time of day."""
    day = clock % 24
    load = 50.0
    load += 90.0 * _bump(day, 7.5, 18.0, 1.0)  # offices
    load += 110.0 * _bump(day, 17.0, 21.0, 0.75)  # the evening peak: kitchens, heat pumps
    return load


def _bump(x: float, rise: float, fall: float, width: float) -> float:
    return 1.0 / (1.0 + math.exp(-(x - rise) / width * 4)) - 1.0 / (
        1.0 + math.exp(-(x - fall) / width * 4)
    )


def day_of(n_cars: int, seed: int) -> Day:
    rng = random.Random(seed)
    evses = [
        EvseSlot(
            f"CP{i:03d}",
            1,
            "deck-a" if i % 2 == 0 else "deck-b",
            ROTATIONS[i % 3],
            max_a=rng.choice([16.0, 32.0, 32.0]),
        )
        for i in range(n_cars)
    ]
    scale = n_cars / 50
    site = Site(
        "day",
        (
            Circuit("grid", None, limit_a=400.0 * scale),
            Circuit("deck-a", "grid", limit_a=160.0 * scale),
            Circuit("deck-b", "grid", limit_a=160.0 * scale),
        ),
        tuple(evses),
        VOLTAGE,
    )
    forecast = []
    moment = START
    while moment < END:
        room = 400.0 - building_a(hours(moment)) + rng.uniform(-8, 8)
        forecast.append((moment, {"grid": CircuitLimit(limit_a=round(room * scale, 1))}))
        moment += QUARTER
    shape = [
        0.24, 0.30, 0.33, 0.31, 0.26, 0.21, 0.17, 0.15, 0.14, 0.15, 0.19, 0.27,  # 06:00 to 17:00
        0.38, 0.44, 0.41, 0.33, 0.27, 0.23, 0.20, 0.18, 0.17, 0.17, 0.18, 0.20,  # 18:00 to 05:00
    ]  # fmt: skip
    prices = [round(p + rng.uniform(-0.015, 0.015), 3) for p in shape]
    cars = []
    for i, slot in enumerate(evses):
        kind = i % 10
        if kind < 5:  # work
            arrive = 7.0 + rng.uniform(0, 2.5)
            leave = 16.0 + rng.uniform(0, 2.5)
        elif kind < 7:  # a stop in the day
            arrive = 10.0 + rng.uniform(0, 6)
            leave = arrive + rng.uniform(1, 3)
        else:  # home for the night
            arrive = 17.0 + rng.uniform(0, 4)
            leave = 29.0 + rng.uniform(0, 1)
        phases = 1 if rng.random() < 0.2 else 3
        most = slot.max_a * VOLTAGE * phases * (leave - arrive) * 0.9
        need = min(rng.uniform(8_000, 45_000), most)
        cars.append(
            Demand(
                slot.key,
                phases=phases,
                since=START + timedelta(hours=round(arrive - 6, 3)),
                departure=START + timedelta(hours=round(leave - 6, 3)),
                energy_wh=round(need),
            )
        )
    return Day(site, cars, forecast, prices)


@dataclass(slots=True)
class Outcome:
    energy_wh: dict[str, float]
    cost: float
    solver_s: float = 0.0
    solves: int = 0
    optimal: int = 0
    slowest_s: float = 0.0


def outcome_of(schedule: Schedule) -> Outcome:
    return Outcome({c.evse: c.energy_wh for c in schedule.cars}, schedule.cost)


def replanned(day: Day, time_limit_s: float) -> Outcome:
    """A new plan at every arrival, followed until the next one."""
    got = {c.evse: 0.0 for c in day.cars}
    result = Outcome(got, 0.0)
    arrivals = sorted({c.since for c in day.cars if c.since})
    for k, now in enumerate(arrivals):
        until = arrivals[k + 1] if k + 1 < len(arrivals) else END
        there = [
            replace(c, energy_wh=c.energy_wh - got[c.evse])
            for c in day.cars
            if c.since and c.since <= now and c.departure and c.departure > now
            and c.energy_wh and c.energy_wh - got[c.evse] > 1.0
        ]  # fmt: skip
        if not there:
            continue
        intervals = day.intervals(now, there)
        began = time.perf_counter()
        plan = optimize(day.site, there, intervals, time_limit_s=time_limit_s)
        took = time.perf_counter() - began
        result.solver_s += took
        result.slowest_s = max(result.slowest_s, took)
        result.solves += 1
        result.optimal += plan.optimal
        for car in plan.cars:
            for (begin, _), wh, (_, _, _, price) in zip(
                plan.intervals, car.energies_wh, intervals, strict=True
            ):
                if begin < until:
                    got[car.evse] += wh
                    result.cost += wh / 1000 * (price or 0.0)
    return result


def served(day: Day, energy: dict[str, float]) -> int:
    """Cars that got their energy, to 50 Wh (the plan's currents are rounded to 0.1 A: 17 Wh
    a quarter hour on three phases)."""
    return sum(energy[c.evse] >= (c.energy_wh or 0) - SERVED_WITHIN_WH for c in day.cars)


def short_kwh(day: Day, energy: dict[str, float]) -> float:
    return sum(max((c.energy_wh or 0) - energy[c.evse], 0.0) for c in day.cars) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cars", type=int, default=50)
    parser.add_argument("--time-limit", type=float, default=30.0, help="per solve, seconds")
    parser.add_argument("--quick", action="store_true", help="10 cars, for CI")
    args = parser.parse_args()
    n_cars = 10 if args.quick else args.cars
    day = day_of(n_cars, args.seed)
    need = sum(c.energy_wh or 0 for c in day.cars)
    intervals = day.intervals(START, day.cars)
    print(
        f"{n_cars} cars needing {need / 1000:,.0f} kWh, {len(intervals)} intervals; grid room "
        f"{min(lim['grid'].limit_a or 0 for _, lim in day.forecast):.0f} to "
        f"{max(lim['grid'].limit_a or 0 for _, lim in day.forecast):.0f} A per phase; "
        f"price {min(day.prices):.3f} to {max(day.prices):.3f} per kWh"
    )

    began = time.perf_counter()
    base = outcome_of(full_power(day.site, day.cars, intervals))
    base.solver_s = time.perf_counter() - began
    began = time.perf_counter()
    plan = optimize(day.site, day.cars, intervals, time_limit_s=args.time_limit)
    ahead = outcome_of(plan)
    ahead.solver_s = ahead.slowest_s = time.perf_counter() - began
    ahead.solves, ahead.optimal = 1, int(plan.optimal)
    rolling = replanned(day, args.time_limit)

    runs = [("full power", base), ("optimizer, day plan", ahead), ("re-planned", rolling)]
    print(f"{'':>24}" + "".join(f"{name:>22}" for name, _ in runs))
    rows = [
        ("energy delivered, kWh", lambda o: sum(o.energy_wh.values()) / 1000, "{:,.1f}"),
        ("energy short, kWh", lambda o: short_kwh(day, o.energy_wh), "{:,.2f}"),
        ("cars fully served", lambda o: served(day, o.energy_wh), "{:.0f}"),
        ("cost", lambda o: o.cost, "{:,.2f}"),
        ("average price per kWh", lambda o: o.cost / sum(o.energy_wh.values()) * 1000, "{:.4f}"),
    ]
    for label, value, fmt in rows:
        cells = "".join(f"{fmt.format(value(o)):>22}" for _, o in runs)
        print(f"{label:>24}{cells}")
        if value(base) >= (1.0 if label.startswith("energy short") else 1e-9):  # not vs ~0
            ratios = "".join(f"{value(o) / value(base):>21.3f}x" for _, o in runs[1:])
            print(f"{'vs full power':>24}{'':>22}{ratios}")
    times = "".join(
        f"{f'{o.solver_s:.2f} s / {o.solves} ({o.optimal} opt.)':>22}" for _, o in runs[1:]
    )
    print(f"{'solver time / solves':>24}{f'{base.solver_s:.2f} s':>22}{times}")
    print(
        f"{'slowest solve':>24}{'':>22}" + "".join(f"{o.slowest_s:>20.2f} s" for _, o in runs[1:])
    )


if __name__ == "__main__":
    main()
