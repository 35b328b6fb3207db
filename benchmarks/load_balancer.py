"""How long the load balancer takes for 10, 100, 1,000 and 10,000 EVSEs (target: under 100 ms at
1,000).

Each site is a tree the way large car parks are built: the grid connection, a feeder per 100
EVSEs, a distribution board per 10, with a current limit on every circuit and a power limit on
the grid connection, sized so that about half the cars cannot have their maximum. Wiring is
rotated from one EVSE to the next; a third of the cars charge on one phase; half report what
they draw, some less than they were offered. Every policy is timed. The baseline, run in the
same process, is the crudest rule there is: the grid connection's current split evenly over the
cars, with no tree, no phases and no minimums.

    python benchmarks/load_balancer.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from chargegrid.domain.balancing import Demand, Policy, balance
from chargegrid.domain.site import Circuit, EvseSlot, Site, Wiring

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
ROTATIONS = [Wiring.parse(w) for w in ("L1L2L3", "L2L3L1", "L3L1L2")]


def site_of(evses: int, seed: int = 1) -> tuple[Site, list[Demand]]:
    rng = random.Random(seed)
    circuits = [Circuit("grid", None, limit_a=evses * 24.0, limit_w=evses * 230 * 3 * 22.0)]
    slots: list[EvseSlot] = []
    for i in range(evses):
        feeder, board = f"feeder{i // 100}", f"board{i // 10}"
        if i % 100 == 0:
            circuits.append(Circuit(feeder, "grid", limit_a=min(evses, 100) * 26.0))
        if i % 10 == 0:
            circuits.append(Circuit(board, feeder, limit_a=280.0))
        slots.append(EvseSlot(f"CS{i:05d}", 1, board, ROTATIONS[i % 3], max_a=32.0))
    demands = []
    for slot in slots:
        offered = rng.choice([None, 16.0, 32.0])
        demands.append(
            Demand(
                slot.key,
                phases=1 if rng.random() < 0.33 else 3,
                measured_a=None if offered is None else rng.uniform(4, offered),
                offered_a=offered,
                priority=rng.randint(0, 2),
                since=NOW - timedelta(minutes=rng.randint(0, 600)),
                energy_wh=rng.uniform(5_000, 60_000),
                departure=NOW + timedelta(minutes=rng.randint(30, 600)),
            )
        )
    return Site("bench", tuple(circuits), tuple(slots)), demands


def crude(site: Site, demands: list[Demand]) -> list[float]:
    share = (site.root.limit_a or 0.0) / max(len(demands), 1)
    return [min(share, 32.0) for _ in demands]


def best_of(repeat: int, fn: object, *args: object, **kwargs: object) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args, **kwargs)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    policies = list(Policy)
    header = " ".join(f"{p.value:>12}" for p in policies)
    print(f"{'EVSEs':>6} {header} {'crude split':>12} {'paused':>7} {'capped':>7}")
    for size in (10, 100, 1_000, 10_000):
        site, demands = site_of(size)
        times = [best_of(args.repeat, balance, site, demands, policy=p, now=NOW) for p in policies]
        base = best_of(args.repeat, crude, site, demands)
        plan = balance(site, demands, now=NOW)
        paused = sum(a.state == "paused" for a in plan.allocations)
        capped = sum(a.state == "charging" and a.current_a < 31.9 for a in plan.allocations)
        cells = " ".join(f"{t * 1e3:9.1f} ms" for t in times)
        print(f"{size:>6} {cells} {base * 1e3:9.3f} ms {paused:>7} {capped:>7}")
        ratio = " ".join(f"{t / base:>11.0f}x" for t in times)
        print(f"{'':>6} {ratio}")


if __name__ == "__main__":
    main()
