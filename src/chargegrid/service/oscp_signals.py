"""What a site's plan tells a Capacity Provider about one of its groups (OSCP 2.0, FP to CP),
worked out without I/O from the site, the balancer's plan, what it planned from (its
:class:`~chargegrid.service.planning.Inputs`, taken by :func:`snapshot`) and the CP's forecast
in force.

* :func:`fixed_load`: what the EVSEs the balancer cannot steer under the group's circuit may
  draw, per site phase and in watts, counted as the balancer counts them
  (:mod:`chargegrid.domain.balancing`, rule 1): at the current it names in ``fixed`` (an
  offline station's car holding a profile, a profile in doubt), else at their fallback (no
  smart charging, station offline).
* :func:`compliance_blocks`: when the plan says the group's circuit is over a limit
  (``Plan.overloaded``) and the fixed load alone is over a block of the forecast in force, the
  blocks the group cannot keep to (that one and those ahead the same load exceeds): what a
  GroupCapacityComplianceError carries.
* :func:`adjustment`: when cars under the group's circuit are paused for want of room for their
  minimum, the blocks in force with that room added (on each phase the paused cars load, or in
  watts): what an AdjustGroupCapacityForecast asks. The blocks keep the CP's times, so it can
  match them to its own; capacities are in ``A`` when the CP's block was, ``W`` otherwise.
* :func:`relaxed`: the limits as they would be were the CP to grant the adjustment, and
  :func:`balanced_on`: the balancer run on them, so the caller asks only when that would let a
  paused car charge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from chargegrid.domain.balancing import CircuitLimit, Plan, balance
from chargegrid.domain.site import SITE_PHASES, Site
from chargegrid.protocols import oscp
from chargegrid.service.planning import Inputs

__all__ = [
    "ROOM",
    "Balancer",
    "Held",
    "Load",
    "adjustment",
    "balanced_on",
    "compliance_blocks",
    "fixed_load",
    "in_force",
    "relaxed",
    "snapshot",
]

ROOM = "no room for its minimum current"  # the balancer's reason for pausing a car for a limit
_EPS = 1e-6

Held = tuple[oscp.ForecastedBlock, oscp.CapacityBlock]
"""A block of the CP's forecast as it sent it, and as the limit chargegrid applies."""


@dataclass(frozen=True, slots=True)
class Load:
    """Amperes on each site phase (L1, L2, L3) and watts over the three."""

    amps: tuple[float, float, float]
    watts: float

    def over(self, block: oscp.CapacityBlock, voltage: float) -> float:
        """How far this load is above ``block``'s limit (negative: below)."""
        if block.phase is None:
            load = max(self.amps) if block.unit == "A" else self.watts
        else:
            amps = self.amps[SITE_PHASES.index(block.phase)]
            load = amps if block.unit == "A" else amps * voltage
        return load - block.limit


class Balancer(Protocol):
    """What :func:`snapshot` needs of the load balancer."""

    def snapshot(self, site_id: str) -> Inputs: ...


def snapshot(balancer: Balancer, site_id: str) -> Inputs:
    """What the balancer plans the site from now (``moments[0]``: the limits in force and the
    EVSEs it counts at a current of its own). Taken on the event loop: the balancer's state is
    live. Raises SiteNotFound."""
    return balancer.snapshot(site_id)


def fixed_load(
    site: Site, circuit: str, offline: frozenset[str], fixed: Mapping[str, float] | None = None
) -> tuple[Load, list[str]]:
    """What the EVSEs under ``circuit`` the balancer cannot steer may draw, and which they are
    (keys): each at its current in ``fixed`` (EVSE key -> A, ``Inputs.moments[0].fixed``), else
    at its fallback when it has no smart charging or is ``offline`` (as :func:`balance`)."""
    fixed = fixed or {}
    under = site.under(circuit)
    amps = [0.0, 0.0, 0.0]
    watts = 0.0
    keys = []
    for slot in site.evses:
        if slot.circuit not in under:
            continue
        if slot.key in fixed:
            current = fixed[slot.key]
        elif not slot.smart or slot.key in offline:
            current = slot.fallback_a
        else:
            continue
        keys.append(slot.key)
        for phase in slot.wiring.phases:
            amps[phase] += current
        watts += current * site.voltage_v * len(slot.wiring.phases)
    return Load((amps[0], amps[1], amps[2]), watts), sorted(keys)


def in_force(held: Sequence[Held], now: datetime) -> list[Held]:
    return [(fb, cb) for fb, cb in held if cb.start <= now < cb.end]


def compliance_blocks(
    site: Site, circuit: str, plan: Plan, held: Sequence[Held], load: Load, now: datetime
) -> list[oscp.ForecastedBlock]:
    """The forecast's blocks, in force or ahead, that ``load`` (:func:`fixed_load`) exceeds,
    when the plan has the group's circuit over a limit and one of them is in force; else
    none."""
    if not any(name.startswith(f"{circuit}/") for name in plan.overloaded):
        return []
    over = [(fb, cb) for fb, cb in held if cb.end > now and load.over(cb, site.voltage_v) > _EPS]
    if not in_force(over, now):
        return []  # over the circuit's own limit or another source's, not the CP's
    return [fb for fb, _ in over]


def adjustment(
    site: Site, circuit: str, plan: Plan, held: Sequence[Held], now: datetime
) -> list[tuple[oscp.CapacityBlock, oscp.ForecastedBlock]]:
    """Each block in force with the room the paused cars under ``circuit`` need for their
    minimum added: (the block as applied, the block to ask for). None when no car waits."""
    slots = {e.key: e for e in site.evses}
    under = site.under(circuit)
    need = [0.0, 0.0, 0.0]
    for allocation in plan.allocations:
        slot = slots.get(allocation.evse)
        if allocation.state != "paused" or allocation.reason != ROOM or slot is None:
            continue
        if slot.circuit in under:
            for name in allocation.phases:
                need[SITE_PHASES.index(name)] += slot.min_a
    if not any(need):
        return []
    wanted = Load((need[0], need[1], need[2]), sum(need) * site.voltage_v)
    out = []
    for _, cb in in_force(held, now):
        extra = wanted.over(replace(cb, limit=0.0), site.voltage_v)
        if extra > _EPS:
            asked = round(cb.limit + extra, 1)
            out.append((cb, oscp.forecasted_block(asked, cb.unit, cb.phase, cb.start, cb.end)))
    return out


def relaxed(
    limits: Mapping[str, CircuitLimit],
    circuit: str,
    asks: Sequence[tuple[oscp.CapacityBlock, oscp.ForecastedBlock]],
    voltage: float,
) -> dict[str, CircuitLimit]:
    """``limits`` (all sources, as in force) with the CP's limits on ``circuit`` raised to what
    :func:`adjustment` asks, where the CP's limit is the one that holds (no other source is
    lower)."""
    current = limits.get(circuit, CircuitLimit())
    limit_a, limit_w, phases = current.limit_a, current.limit_w, list(current.phase_a)
    for cb, fb in asks:
        if cb.phase is None and cb.unit == "A":
            limit_a = _raise(limit_a, cb.limit, fb.capacity)
        elif cb.phase is None:
            limit_w = _raise(limit_w, cb.limit, fb.capacity)
        else:
            i = SITE_PHASES.index(cb.phase)
            scale = 1.0 if cb.unit == "A" else voltage  # one phase in W: a current (see oscp.py)
            phases[i] = _raise(phases[i], cb.limit / scale, fb.capacity / scale)
    out = dict(limits)
    out[circuit] = CircuitLimit(limit_a, limit_w, (phases[0], phases[1], phases[2]))
    return out


def balanced_on(inputs: Inputs, limits: Mapping[str, CircuitLimit]) -> Plan:
    """The balancer's plan from ``inputs`` now, on ``limits`` (:func:`relaxed`) instead of
    those in force: the same cars, the same fixed loads. Pure, and it may take a while on a
    large site: run it on a thread."""
    moment = inputs.moments[0]
    return balance(
        inputs.site,
        inputs.demands,
        limits=limits,
        offline=inputs.offline,
        fixed=moment.fixed,
        now=moment.start,
        headroom_a=inputs.headroom_a,
    )


def _raise(value: float | None, ours: float, asked: float) -> float | None:
    return asked if value is not None and value >= ours - _EPS else value
