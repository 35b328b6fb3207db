"""OpenADR 3 events as limits and prices, pure (step 3 of the exchange in
:mod:`chargegrid.service.openadr3`): :func:`event_blocks` maps an event's payloads, interval by
interval, to limits on a circuit and energy prices; :func:`targeted` tells whether an event or
program is for this VEN."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import Site
from chargegrid.protocols import openadr3 as oadr
from chargegrid.service.balancing import LimitBlock, PriceBlock

SIMPLE_FRACTIONS: Mapping[int, float | None] = {0: None, 1: 0.75, 2: 0.5, 3: 0.0}
"""SIMPLE level -> fraction of the circuit's own limits in force: 0 (normal) sets no limit, 3
(emergency) pauses the cars (the OpenADR 2.0b VEN's defaults too)."""
_CAPACITY_UNITS: Mapping[str, tuple[str, float]] = {
    "KW": ("W", 1000.0),
    "W": ("W", 1.0),
    "MW": ("W", 1e6),
    "AMPS": ("A", 1.0),
    "A": ("A", 1.0),
}
_PRICE_UNITS: Mapping[str, float] = {"KWH": 1.0, "WH": 1000.0, "MWH": 0.001}  # -> per kWh


@dataclass(frozen=True, slots=True)
class EventBlocks:
    limits: tuple[LimitBlock, ...]
    prices: tuple[PriceBlock, ...]
    ignored: tuple[str, ...]  # what was not applied, and why


def event_blocks(
    event: oadr.Event, program: oadr.Program | None, site: Site, circuit: str, now: datetime
) -> EventBlocks:
    """An OpenADR 3 event as limits on ``circuit`` of ``site`` and energy prices, interval by
    interval (times by :func:`~chargegrid.protocols.openadr3.event_slots`; ``now`` is what a
    start of "now" means). Payloads (the first value of each; units from the event's
    payloadDescriptor of the type, else the program's):

    * ``IMPORT_CAPACITY_LIMIT``: ``KW`` (the default), ``W`` or ``MW`` -> ``limit_w``, the phases
      together; ``AMPS`` -> ``limit_a`` on each phase.
    * ``SIMPLE``: level 1, 2, 3 -> 75 %, 50 %, 0 % of the circuit's own ``limit_a`` and
      ``limit_w`` (:data:`SIMPLE_FRACTIONS`); level 0 (normal) sets none.
    * ``PRICE``: per ``KWH`` (the default; ``WH``, ``MWH`` converted) in the descriptor's
      currency -> a :class:`PriceBlock`.

    Anything else (another type, a value that is no number, a unit not listed, a negative
    limit) is left out and said in ``ignored``. Raises OpenAdrError (400) when the intervals
    cannot be placed."""
    slots = oadr.event_slots(event, now)
    own = next((c for c in site.circuits if c.id == circuit), None)
    limits: list[LimitBlock] = []
    prices: list[PriceBlock] = []
    ignored: list[str] = []
    for slot in slots:
        for payload in slot.payloads:
            units, currency = _descriptor(event, program, payload.type)
            value = _number(payload.values)
            where = f"{payload.type} in interval {slot.interval_id}"
            if payload.type not in ("IMPORT_CAPACITY_LIMIT", "SIMPLE", "PRICE"):
                ignored.append(f"{payload.type}: not a payload type chargegrid applies")
            elif value is None:
                ignored.append(f"{where}: no number")
            elif payload.type == "IMPORT_CAPACITY_LIMIT":
                limit = _capacity(value, units)
                if isinstance(limit, str):
                    ignored.append(f"{where}: {limit}")
                else:
                    limits.append(LimitBlock(circuit, limit, slot.start, slot.end))
            elif payload.type == "SIMPLE":
                simple = _simple(value, own.limit_a if own else None, own.limit_w if own else None)
                if isinstance(simple, str):
                    ignored.append(f"{where}: {simple}")
                elif simple is not None:
                    limits.append(LimitBlock(circuit, simple, slot.start, slot.end))
            else:
                factor = _PRICE_UNITS.get(units or "KWH")
                if factor is None:
                    ignored.append(f"{where}: price per {units}, not per energy")
                else:
                    prices.append(PriceBlock(value * factor, currency, slot.start, slot.end))
    return EventBlocks(tuple(limits), tuple(prices), tuple(dict.fromkeys(ignored)))


def targeted(targets: Sequence[oadr.Target] | None, ven_name: str, resource_name: str) -> bool:
    """Whether an event or program with ``targets`` is for this VEN: unless 3.0 ``valuesMap``
    targets of type ``VEN_NAME`` or ``RESOURCE_NAME`` name others only. Other target types
    (groups, locations) and 3.1's string targets are the VTN's to filter by: it answers a VEN
    with what is meant for it."""
    named = [
        t
        for t in targets or ()
        if isinstance(t, oadr.ValuesMap) and t.type in ("VEN_NAME", "RESOURCE_NAME")
    ]
    if not named:
        return True
    return any(
        (t.type == "VEN_NAME" and ven_name in t.values)
        or (t.type == "RESOURCE_NAME" and resource_name in t.values)
        for t in named
    )


def _descriptor(
    event: oadr.Event, program: oadr.Program | None, payload_type: str
) -> tuple[str | None, str]:
    """(units upper-cased, currency) of a payload type: the event's descriptor, else the
    program's event payload descriptor."""
    found: list[oadr.EventPayloadDescriptor | oadr.PayloadDescriptor] = [
        d for d in event.payload_descriptors or () if d.payload_type == payload_type
    ]
    if program is not None:
        found += [
            d
            for d in program.payload_descriptors or ()
            if d.payload_type == payload_type and d.object_type != "REPORT_PAYLOAD_DESCRIPTOR"
        ]
    units = next((d.units for d in found if d.units), None)
    currency = next((d.currency for d in found if d.currency), None)
    return (units.upper() if units else None), currency or ""


def _number(values: Sequence[oadr.Value]) -> float | None:
    if not values or isinstance(values[0], bool) or not isinstance(values[0], int | float):
        return None
    value = float(values[0])
    return value if math.isfinite(value) else None


def _capacity(value: float, units: str | None) -> CircuitLimit | str:
    unit = _CAPACITY_UNITS.get(units or "KW")
    if unit is None:
        return f"a capacity in {units}"
    if value < 0:
        return f"a negative capacity ({value})"
    kind, factor = unit
    if kind == "A":
        return CircuitLimit(limit_a=value * factor)
    return CircuitLimit(limit_w=value * factor)


def _simple(
    value: float, limit_a: float | None, limit_w: float | None
) -> CircuitLimit | str | None:
    if value not in SIMPLE_FRACTIONS:
        return f"level {value} is not 0 to 3"
    fraction = SIMPLE_FRACTIONS[int(value)]
    if fraction is None:
        return None
    if limit_a is None and limit_w is None:
        return "the circuit has no limit of its own to take a share of"
    return CircuitLimit(
        limit_a=None if limit_a is None else limit_a * fraction,
        limit_w=None if limit_w is None else limit_w * fraction,
    )
