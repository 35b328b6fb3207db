"""chargegrid as an OpenADR 2.0b VEN (Virtual End Node) of a grid operator's VTN: the VTN's
demand-response events become limits (and energy prices) over time on one site, or one circuit
of it, and the load balancer shares what is left among the cars.

Each event is one source of the balancer (``openadr2:<vtn>:<event id>``): each of its intervals
becomes a block from the interval's start for its duration, and a new modification of the event
(a higher ``modificationNumber``) replaces everything the event set before. A cancelled or
completed event, one that ended, and one the VTN no longer lists in an oadrDistributeEvent
(OpenADR 2.0b implied cancellation) takes its limits and prices with it. Where events overlap,
the lowest limit in force wins (event priorities are not weighed).

What each signal means (:func:`effect`, a pure function; the circuit is the site's grid
connection unless one is named):

==========================  =====================  ===========================================
signal                      type                   becomes
==========================  =====================  ===========================================
SIMPLE                      level 0, 1, 2, 3       a share of the circuit's own limits (A and
                                                   W): 100 %, 75 %, 50 %, 0 % by default
LOAD_DISPATCH               setpoint               ``limit_w`` (W; kW when the signal has no
                                                   item base)
LOAD_DISPATCH               delta                  ``limit_w`` = the circuit's draw when the
                                                   event arrives + the delta
LOAD_DISPATCH               multiplier             ``limit_w`` = that draw x the multiplier
LOAD_CONTROL                x-loadControlCapacity  a share (0 to 1) of the circuit's own limits
LOAD_CONTROL                x-loadControlPercent-  a share of 100 % + the offset (-20: 80 %)
                            Offset
LOAD_CONTROL                x-loadControlLevel-    as SIMPLE level *offset* (0 and below:
                            Offset                 normal, 3 and above: level 3)
ELECTRICITY_PRICE,          price                  an energy price per kWh (currencyPerKWh or
ENERGY_PRICE                                       no item base), currency from the item base
==========================  =====================  ===========================================

A limit never goes below 0, and is held a second past its interval's end (charging profiles
count in whole seconds; rounding must not end it early). Signals chargegrid does not act on
(DEMAND_CHARGE, BID_*, CHARGE_STATE, ``x-`` names, priceRelative / priceMultiplier without a
base price, a device setpoint of LOAD_CONTROL, prices per kW or per therm) are logged and left
out; an event with none it acts on is opted out of.

Opting: with the ``in`` policy an event chargegrid applies is opted in; with ``out`` every
event is acknowledged with optOut and nothing is applied. Test events are acknowledged and not
applied. An event that does not decode, has no signal chargegrid acts on, or has a signal whose
values do not fit (a SIMPLE level 5, a capacity of 1.5, a LOAD_DISPATCH in currency) is logged
and opted out of. When it is a modification of an event already applied, the last modification
applied stays in force (its limits and prices, until it ends, the event is cancelled or no
longer listed, or a later modification applies): a load shed is not lifted by an update
chargegrid cannot read.

The answer given to each event (to ignore an older modification arriving late) is forgotten
once the event ended or the VTN no longer lists it.

Errors: :class:`~chargegrid.protocols.openadr2.Openadr2Error` for an event that does not
decode, :class:`SignalError` (both ``ValueError``) for a signal that cannot be applied; the
:class:`Ven` turns both into optOut and raises neither.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import Circuit, Site
from chargegrid.protocols.openadr2 import (
    Event,
    EventStatus,
    ItemBase,
    Openadr2Error,
    Signal,
    decode_event,
    event_id_of,
)
from chargegrid.service.balancing import LimitBlock, PriceBlock
from chargegrid.service.ports import Clock
from chargegrid.service.sites import SiteNotFound

log = structlog.get_logger(__name__)

SI_SCALE = {
    "p": 1e-12,
    "n": 1e-9,
    "micro": 1e-6,
    "m": 1e-3,
    "c": 1e-2,
    "d": 1e-1,
    "none": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
}
DEFAULT_SIMPLE_LEVELS = (1.0, 0.75, 0.5, 0.0)


class SignalError(ValueError):
    """A signal chargegrid knows whose values or units do not fit: the message says what."""


@dataclass(frozen=True, slots=True)
class MappingOptions:
    """``simple_levels``: the share of a circuit's own limits at SIMPLE level 0, 1, 2 and 3;
    ``dispatch_scale``: the SI scale of a LOAD_DISPATCH without item base (``k``: kW);
    ``hold``: how long a limit is held past the end of its interval. Charging profiles count
    in whole seconds (OCPP ``startPeriod``), and a moment rounded to a second must not end a
    limit before the VTN said: held a second longer, and overlapping the next interval's
    (the lower wins), it ends no earlier."""

    simple_levels: tuple[float, ...] = DEFAULT_SIMPLE_LEVELS
    dispatch_scale: str = "k"
    hold: timedelta = timedelta(seconds=1)

    def __post_init__(self) -> None:
        levels = self.simple_levels
        if len(levels) != 4 or not all(0.0 <= share <= 1.0 for share in levels):
            raise ValueError("simple_levels: four shares from 0 to 1, for levels 0 to 3")
        if self.dispatch_scale not in SI_SCALE:
            raise ValueError(f"dispatch_scale: one of {', '.join(SI_SCALE)}")
        if self.hold < timedelta(0):
            raise ValueError("hold: 0 or more")


@dataclass(frozen=True, slots=True)
class Effect:
    """What an event does to a site: limits and prices over time, and the signals left out
    (each with why)."""

    limits: tuple[LimitBlock, ...] = ()
    prices: tuple[PriceBlock, ...] = ()
    ignored: tuple[str, ...] = ()

    @property
    def applied(self) -> bool:
        return bool(self.limits or self.prices)


_LimitOf = Callable[[float], CircuitLimit]


def effect(
    event: Event,
    circuit: Circuit,
    *,
    draw_w: float = 0.0,
    options: MappingOptions = MappingOptions(),  # frozen: one shared default is safe
) -> Effect:
    """The limits and prices ``event`` sets on ``circuit`` (whose draw now is ``draw_w``, for
    relative signals). Raises :class:`SignalError` only."""
    limits: list[LimitBlock] = []
    prices: list[PriceBlock] = []
    ignored: list[str] = []
    for signal in event.signals:
        label = f"{signal.name}/{signal.kind}"
        name = signal.name.upper()
        if name in ("ELECTRICITY_PRICE", "ENERGY_PRICE"):
            found = _prices(signal)
            if isinstance(found, str):
                ignored.append(f"{label}: {found}")
            else:
                prices.extend(found)
            continue
        limit_of = _limit_of(signal, circuit, draw_w, options)
        if isinstance(limit_of, str):
            ignored.append(f"{label}: {limit_of}")
            continue
        for interval in signal.intervals:
            limit = limit_of(interval.value)
            end = interval.end
            held = None if end is None else _later(end, options.hold)
            limits.append(LimitBlock(circuit.id, limit, interval.start, held))
    return Effect(tuple(limits), tuple(prices), tuple(ignored))


def _limit_of(
    signal: Signal, circuit: Circuit, draw_w: float, options: MappingOptions
) -> _LimitOf | str:
    """How each payload of ``signal`` becomes a limit, or why it is left out."""
    name, kind = signal.name.upper(), signal.kind
    if name == "SIMPLE":
        if kind != "level":
            raise SignalError(f"SIMPLE signals are of type level, not {kind}")
        return lambda v: _share(circuit, options.simple_levels[_level(v, strict=True)])
    if name == "LOAD_DISPATCH":
        factor = _watts(signal.item, options)
        if kind == "setpoint":
            return lambda v: CircuitLimit(limit_w=max(0.0, v * factor))
        if kind == "delta":
            return lambda v: CircuitLimit(limit_w=max(0.0, draw_w + v * factor))
        if kind == "multiplier":
            return lambda v: CircuitLimit(limit_w=draw_w * _at_least_0(v, "a multiplier"))
        return f"type {kind} is not one chargegrid acts on for LOAD_DISPATCH"
    if name == "LOAD_CONTROL":
        if kind == "x-loadControlCapacity":
            return lambda v: _share(circuit, _capacity(v))
        if kind == "x-loadControlPercentOffset":
            return lambda v: _share(circuit, _capacity(1.0 + _percent(v) / 100.0))
        if kind == "x-loadControlLevelOffset":
            return lambda v: _share(circuit, options.simple_levels[_level(v, strict=False)])
        return f"type {kind} (a device setpoint) is not one chargegrid acts on"
    return "not a signal chargegrid acts on"


def _prices(signal: Signal) -> list[PriceBlock] | str:
    kind = signal.kind
    if kind in ("priceRelative", "priceMultiplier"):
        return "relative to a base price chargegrid is not given"
    if kind != "price":
        raise SignalError(f"{signal.name} signals are prices, not of type {kind}")
    item = signal.item
    currency = ""
    factor = 1.0
    if item is not None:
        if item.name not in ("currencyPerKWh", "currency"):
            return f"a price in {item.name}, not per kWh"
        currency = item.unit
        factor = _scale(item)
    return [
        PriceBlock(interval.value * factor, currency, interval.start, interval.end)
        for interval in signal.intervals
    ]


def _later(moment: datetime, hold: timedelta) -> datetime:
    try:
        return moment + hold
    except OverflowError:  # at the end of the calendar: nothing comes after it anyway
        return moment


def _share(circuit: Circuit, share: float) -> CircuitLimit:
    if circuit.limit_a is None and circuit.limit_w is None:
        raise SignalError(f"circuit {circuit.id} has no limit of its own to take a share of")
    return CircuitLimit(
        limit_a=None if circuit.limit_a is None else circuit.limit_a * share,
        limit_w=None if circuit.limit_w is None else circuit.limit_w * share,
    )


def _level(value: float, *, strict: bool) -> int:
    if value != int(value):
        raise SignalError(f"level {value}: a whole number is needed")
    level = int(value)
    if strict and not 0 <= level <= 3:
        raise SignalError(f"SIMPLE level {level}: 0 to 3")
    return min(max(level, 0), 3)


def _capacity(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise SignalError(f"capacity {value}: a share from 0 to 1 is needed")
    return value


def _percent(value: float) -> float:
    if not -100.0 <= value <= 0.0:
        raise SignalError(f"percent offset {value}: from -100 to 0 (a reduction) is needed")
    return value


def _at_least_0(value: float, what: str) -> float:
    if value < 0:
        raise SignalError(f"{what} of {value}: 0 or more is needed")
    return value


def _watts(item: ItemBase | None, options: MappingOptions) -> float:
    if item is None:
        return SI_SCALE[options.dispatch_scale]
    if item.name != "powerReal" or item.unit not in ("W", ""):
        raise SignalError(f"LOAD_DISPATCH in {item.name} ({item.unit}): powerReal in W is needed")
    return _scale(item)


def _scale(item: ItemBase) -> float:
    factor = SI_SCALE.get(item.scale)
    if factor is None:
        raise SignalError(f"SI scale {item.scale!r} is not one of {', '.join(SI_SCALE)}")
    return factor


# --- the VEN --------------------------------------------------------------------------------


class Opt(enum.Enum):
    """The answer to an event in its oadrCreatedEvent (OpenADR 2.0b, 8.3)."""

    IN = "optIn"
    OUT = "optOut"


class Grid(Protocol):
    """What the VEN needs of the load balancer."""

    def set_timeline(self, site_id: str, source: str, blocks: Sequence[LimitBlock]) -> None: ...

    def set_prices(self, site_id: str, source: str, blocks: Sequence[PriceBlock]) -> None: ...

    def site_power_w(self, site_id: str, circuit: str | None = None) -> float: ...


class SiteLookup(Protocol):
    def get(self, site_id: str) -> Site: ...


@dataclass
class _Held:
    """What an applied event set, to take it away again."""

    site_id: str
    end: datetime | None
    prices: bool


@dataclass(frozen=True, slots=True)
class _Answer:
    """The answer to an event's latest modification, remembered until the event is over."""

    modification: int
    opt: Opt
    end: datetime | None  # the event's, held as its limits are; None: open-ended


class Ven:
    """The events of one VTN, applied to one site (``target``: ``site`` or ``site/circuit``).
    ``vtn`` names the VTN in the balancer's sources and in log lines."""

    def __init__(
        self,
        grid: Grid,
        sites: SiteLookup,
        clock: Clock,
        vtn: str,
        target: str,
        *,
        opt_in: bool = True,
        options: MappingOptions | None = None,
    ) -> None:
        site_id, _, circuit = target.partition("/")
        if not site_id or "/" in circuit:
            raise ValueError(f"target {target!r}: a site, or site/circuit")
        self.grid = grid
        self.sites = sites
        self.clock = clock
        self.vtn = vtn
        self.target = target
        self.site_id = site_id
        self.circuit = circuit or None
        self.opt_in = opt_in
        self.options = options or MappingOptions()
        self._held: dict[str, _Held] = {}  # event id ->
        self._answers: dict[str, _Answer] = {}  # event id ->

    def source(self, event_id: str) -> str:
        return f"openadr2:{self.vtn}:{event_id}"

    def held(self) -> list[str]:
        """The events whose limits or prices are in force or ahead."""
        return sorted(self._held)

    def answered(self) -> list[str]:
        """The events whose latest answer is remembered (listed by the VTN, not over)."""
        return sorted(self._answers)

    def on_event(self, raw: object) -> Opt:
        """A new event, or a new modification of one (openleadr's on_event and
        on_update_event): apply it and answer optIn, or optOut."""
        event_id = event_id_of(raw)
        try:
            event = decode_event(raw)
        except Openadr2Error as exc:
            log.warning(
                "OpenADR event refused",
                vtn=self.vtn,
                event_id=event_id,
                error=str(exc),
                kept=event_id in self._held,  # the last modification applied stays
            )
            return Opt.OUT
        known = self._answers.get(event.event_id)
        if known is not None and event.modification_number < known.modification:
            log.warning(
                "OpenADR event: an older modification, ignored",
                vtn=self.vtn,
                event_id=event.event_id,
                modification=event.modification_number,
                applied=known.modification,
            )
            return known.opt
        opt = self._apply(event)
        end = None if event.end is None else _later(event.end, self.options.hold)
        self._answers[event.event_id] = _Answer(event.modification_number, opt, end)
        return opt

    def listed(self, event_ids: Collection[str]) -> None:
        """The events of a whole oadrDistributeEvent: one no longer in it is cancelled
        (implied cancellation)."""
        for event_id in [e for e in self._held.keys() | self._answers.keys() if e not in event_ids]:
            if event_id in self._held:
                log.info("OpenADR event no longer distributed", vtn=self.vtn, event_id=event_id)
                self._clear(event_id)
            self._answers.pop(event_id, None)

    def expire(self) -> None:
        """Remove the events that have ended (their blocks are over; this keeps the balancer's
        sources few)."""
        now = self.clock.now()
        for event_id, held in list(self._held.items()):
            if held.end is not None and held.end <= now:
                log.info("OpenADR event over", vtn=self.vtn, event_id=event_id)
                self._clear(event_id)
                self._answers.pop(event_id, None)
        for event_id, answer in list(self._answers.items()):  # opted out of, tests, cancelled
            if event_id not in self._held and answer.end is not None and answer.end <= now:
                del self._answers[event_id]

    def power_w(self) -> float:
        """What the target's cars draw now: the TELEMETRY_USAGE reading."""
        try:
            return self.grid.site_power_w(self.site_id, self.circuit)
        except SiteNotFound:
            return 0.0

    def _apply(self, event: Event) -> Opt:
        bound = log.bind(
            vtn=self.vtn, event_id=event.event_id, modification=event.modification_number
        )
        if event.status in (EventStatus.CANCELLED, EventStatus.COMPLETED):
            self._clear(event.event_id)
            bound.info("OpenADR event ended", status=event.status.value)
            return Opt.IN if self.opt_in else Opt.OUT
        if not self.opt_in:
            self._clear(event.event_id)
            bound.info("OpenADR event opted out of (opt policy out)")
            return Opt.OUT
        if event.test:
            self._clear(event.event_id)
            bound.info("OpenADR test event acknowledged, not applied")
            return Opt.IN
        end = event.end
        try:
            site = self.sites.get(self.site_id)
            circuit = self._circuit(site)
            draw = self.grid.site_power_w(site.id, self.circuit)
            found = effect(event, circuit, draw_w=draw, options=self.options)
        except (SiteNotFound, SignalError) as exc:
            kept = event.event_id in self._held  # fail closed: the last one applied stays
            bound.warning("OpenADR event not applied", error=str(exc), kept=kept)
            return Opt.OUT
        for reason in found.ignored:
            bound.info("OpenADR signal left out", reason=reason)
        if not found.applied:
            kept = event.event_id in self._held
            bound.warning("OpenADR event has no signal chargegrid acts on", kept=kept)
            return Opt.OUT
        source = self.source(event.event_id)
        held = self._held.get(event.event_id)
        self.grid.set_timeline(site.id, source, found.limits)
        if found.prices or (held is not None and held.prices):
            self.grid.set_prices(site.id, source, found.prices)
        expires = None if end is None else _later(end, self.options.hold)  # its last block's
        self._held[event.event_id] = _Held(site.id, expires, bool(found.prices))
        bound.info(
            "OpenADR event applied",
            site=site.id,
            limits=len(found.limits),
            prices=len(found.prices),
            start=event.start.isoformat(),
            end=None if end is None else end.isoformat(),
        )
        return Opt.IN

    def _circuit(self, site: Site) -> Circuit:
        if self.circuit is None:
            return site.root
        for circuit in site.circuits:
            if circuit.id == self.circuit:
                return circuit
        raise SiteNotFound(f"site {site.id} has no circuit {self.circuit}")

    def _clear(self, event_id: str) -> None:
        held = self._held.pop(event_id, None)
        if held is None:
            return
        source = self.source(event_id)
        try:
            self.grid.set_timeline(held.site_id, source, [])
            if held.prices:
                self.grid.set_prices(held.site_id, source, [])
        except SiteNotFound:  # the site went, and its limits with it
            pass
