"""A site's electrical tree: the grid connection, the circuits under it and the EVSEs on them.

The root circuit is the grid connection. Every circuit has a current limit per phase (A) and may
have a power limit (W) over all three phases; a circuit's limits bound everything below it. An
EVSE sits on one circuit with its phase wiring: which site phase (L1, L2, L3) each of its own
phases is connected to, for stations installed with rotated phases so that single-phase cars do
not all load L1. A single-phase EVSE names one site phase.

Nothing here knows a protocol; the load balancer (:mod:`chargegrid.domain.balancing`) works on
these records.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field

SITE_PHASES = ("L1", "L2", "L3")
DEFAULT_VOLTAGE_V = 230.0
DEFAULT_MIN_A = 6.0  # IEC 61851-1: the lowest current an AC car must accept
_WIRING = re.compile(r"^(L[123])(L[123])?(L[123])?$")


class Policy(enum.Enum):
    """How a site shares what is left above the cars' minimums (see the balancer); ``cost``
    plans the next 24 hours at the least energy cost instead (:mod:`.optimizing`), and shares
    as ``equal`` where a plan of the moment is wanted."""

    EQUAL = "equal"
    FIRST_COME = "first_come"
    PRIORITY = "priority"
    DEPARTURE = "departure"
    COST = "cost"


class SiteError(ValueError):
    """A site that cannot be: the message says what (an HTTP 422 at the API)."""


@dataclass(frozen=True, slots=True)
class Wiring:
    """Site phase index (0 for L1 ... 2 for L3) of each EVSE phase, in the EVSE's own order."""

    phases: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Wiring:
        """``L1L2L3`` (straight), ``L2L3L1`` or ``L3L1L2`` (rotated), another order of the three,
        or one phase (``L2``) for a single-phase EVSE."""
        match = _WIRING.match(text.strip().upper())
        if not match:
            raise SiteError(
                f"phase wiring {text!r}: expected L1L2L3, a rotation of it, or L1/L2/L3"
            )
        phases = tuple(SITE_PHASES.index(p) for p in match.groups() if p)
        if len(phases) == 2 or len(set(phases)) != len(phases):
            raise SiteError(f"phase wiring {text!r}: one phase, or each of the three once")
        return cls(phases)

    def __str__(self) -> str:
        return "".join(SITE_PHASES[p] for p in self.phases)

    def used_by(self, car_phases: int) -> tuple[int, ...]:
        """The site phases a car drawing on ``car_phases`` of this EVSE's phases loads: the
        first ones, as a car's single phase is the EVSE's first (IEC 61851, L1 of the cable)."""
        return self.phases[: max(1, min(car_phases, len(self.phases)))]


@dataclass(frozen=True, slots=True)
class Circuit:
    """A node of the tree; the root (``parent`` None) is the grid connection."""

    id: str
    parent: str | None
    limit_a: float | None = None  # per phase
    limit_w: float | None = None  # all phases together


@dataclass(frozen=True, slots=True)
class EvseSlot:
    """An EVSE on a circuit. ``fallback_a`` is what it may draw when the balancer cannot steer
    it: the TxDefaultProfile it is given, which an offline station keeps to; for a station that
    takes no charging profiles (``smart`` False), what it is wired or set to draw at most
    (:func:`slot` makes that ``max_a`` unless told)."""

    station_id: str
    evse_id: int
    circuit: str
    wiring: Wiring = field(default_factory=lambda: Wiring((0, 1, 2)))
    max_a: float = 32.0
    min_a: float = DEFAULT_MIN_A
    smart: bool = True
    fallback_a: float = DEFAULT_MIN_A

    @property
    def key(self) -> str:
        return f"{self.station_id}/{self.evse_id}"


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    circuits: tuple[Circuit, ...]
    evses: tuple[EvseSlot, ...] = ()
    voltage_v: float = DEFAULT_VOLTAGE_V  # phase to neutral
    name: str = ""
    policy: Policy = Policy.EQUAL

    def __post_init__(self) -> None:
        check(self)

    @property
    def root(self) -> Circuit:
        return next(c for c in self.circuits if c.parent is None)

    def path(self, circuit: str) -> tuple[str, ...]:
        """``circuit`` and its ancestors up to the grid connection."""
        return self.paths()[circuit]

    def under(self, circuit: str) -> frozenset[str]:
        """``circuit`` and every circuit below it."""
        return frozenset(c for c, path in self.paths().items() if circuit in path)

    def paths(self) -> dict[str, tuple[str, ...]]:
        """:meth:`path` of every circuit, each built on its parent's."""
        parents = {c.id: c.parent for c in self.circuits}
        out: dict[str, tuple[str, ...]] = {}

        def walk(node: str) -> tuple[str, ...]:
            chain: list[str] = []
            cursor: str | None = node
            while cursor is not None and cursor not in out:
                chain.append(cursor)
                cursor = parents[cursor]
            tail = out[cursor] if cursor is not None else ()
            for i in range(len(chain) - 1, -1, -1):
                tail = (chain[i], *tail)
                out[chain[i]] = tail
            return out[node]

        for circuit in parents:
            walk(circuit)
        return out


def slot(
    station_id: str,
    evse_id: int,
    circuit: str,
    wiring: str = "L1L2L3",
    *,
    max_a: float = 32.0,
    min_a: float = DEFAULT_MIN_A,
    smart: bool = True,
    fallback_a: float | None = None,
) -> EvseSlot:
    """An EVSE slot from what an operator gives; the fallback defaults to the car's minimum on
    a smart EVSE (the least it may be held to while offline) and to its maximum on one that
    takes no profiles (nothing holds it lower)."""
    if fallback_a is None:
        fallback_a = min(min_a, max_a) if smart else max_a
    return EvseSlot(
        station_id, evse_id, circuit, Wiring.parse(wiring), max_a, min_a, smart, fallback_a
    )


def check(site: Site) -> None:
    """The rules a site keeps: one grid connection, a tree, positive limits, EVSEs on known
    circuits, each EVSE once, minimum at most maximum."""
    ids = [c.id for c in site.circuits]
    if len(set(ids)) != len(ids):
        raise SiteError("circuit ids must be unique")
    roots = [c for c in site.circuits if c.parent is None]
    if len(roots) != 1:
        raise SiteError("a site has exactly one grid connection (a circuit without parent)")
    known = set(ids)
    parents = {c.id: c.parent for c in site.circuits}
    for circuit in site.circuits:
        if circuit.parent is not None and circuit.parent not in known:
            raise SiteError(f"circuit {circuit.id}: no parent circuit {circuit.parent}")
        for name, value in (("limit_a", circuit.limit_a), ("limit_w", circuit.limit_w)):
            if value is not None and not 0 <= value < math.inf:
                raise SiteError(f"circuit {circuit.id}: {name} must be a number, at least 0")
        seen = {circuit.id}
        node = circuit.parent
        while node is not None:
            if node in seen:
                raise SiteError(f"circuit {circuit.id}: the circuits form a loop")
            seen.add(node)
            node = parents[node]
    if not 0 < site.voltage_v < math.inf:
        raise SiteError("voltage_v must be above 0")
    keys = [e.key for e in site.evses]
    if len(set(keys)) != len(keys):
        raise SiteError("an EVSE sits on one circuit only")
    for evse in site.evses:
        if evse.circuit not in known:
            raise SiteError(f"EVSE {evse.key}: no circuit {evse.circuit}")
        if not 0 <= evse.min_a <= evse.max_a < math.inf:
            raise SiteError(f"EVSE {evse.key}: need 0 <= min_a <= max_a, numbers")
        if not 0 <= evse.fallback_a <= evse.max_a:
            raise SiteError(f"EVSE {evse.key}: need 0 <= fallback_a <= max_a")
        if evse.evse_id < 1:
            raise SiteError(f"EVSE {evse.key}: EVSE ids start at 1")
