"""chargegrid as an OpenADR 3.0.1 VEN of a grid operator's (or retailer's) VTN: its events become
limits and prices over time on a site (or a circuit of one), the load balancer shares that
among the cars, and the VEN reports what the site drew.

The exchange (OpenADR 3.0.1 REST API, the codec in :mod:`chargegrid.protocols.openadr3`):

1. **Token.** With a client id, the VEN gets a bearer token at the token URL (``{base}/auth/token``
   unless configured) by the OAuth 2.0 client credentials grant, renews it 30 s before it
   expires, and once more when a request is answered 401. Without a client id requests go
   without a token.
2. **Polling** every ``poll_interval_s``: ``GET /programs`` (kept: the configured program names,
   or all), then ``GET /events``, kept when the event's program is and its targets do not
   exclude this VEN (:func:`targeted`). Each listing is paged (``skip``: the objects received so
   far, ``limit`` 50) until an empty page, so a VTN that answers fewer than asked is read to the
   end; a VTN that ignores ``skip`` (the same page again) is read once; after
   :data:`MAX_PAGES` pages the listing is cut short. No subscription: the VTN need not reach
   chargegrid.
3. **Events to limits** (:func:`event_blocks`, pure): one source per event,
   ``openadr3:{vtn host}:{event id}``, replaced when the event changes and emptied when it is
   deleted (not in a complete listing: one that failed midway or was cut short removes nothing)
   or its last interval ends. An event that cannot be read or placed is logged; one that was
   read before keeps what it set until it can be read again.
4. **Reports**: for an event whose ``reportDescriptors`` ask for ``USAGE`` or ``DEMAND``, every
   ``report_interval_s`` from its start and once when it ends, ``POST /reports`` with the energy
   the site's charging imported in that span (USAGE, kWh, from the transactions' meter values)
   and what the cars draw at the span's end (DEMAND, kW). Other report payload types are
   logged and not made; ``startInterval``, ``numIntervals``, ``frequency`` and ``repeat`` are not
   followed (the cadence is the VEN's).

If the VTN cannot be reached, what its events set stays in force until it ends. Errors: a
:class:`TransportError` from the transport, an :class:`~chargegrid.protocols.openadr3.OpenAdrError`
from the codec or a VTN's refusal; each is logged with the VTN's host, and the VEN goes on.
The client secret and the tokens are never logged.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from msgspec import UnsetType

from chargegrid.domain import events
from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import Site
from chargegrid.protocols import openadr3 as oadr
from chargegrid.service.balancing import LimitBlock, LoadBalancer, PriceBlock
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.ports import Clock
from chargegrid.service.sites import SiteNotFound, Sites

log = structlog.get_logger(__name__)

TOKEN_MARGIN = timedelta(seconds=30)
_TOKEN_LONGEST_S = 366 * 86400  # an expires_in beyond a year is read as a year
_ZERO = timedelta(0)
MAX_PAGES = 100  # of a listing: a VTN that pages on past this is read no further this poll
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
REPORTED = ("USAGE", "DEMAND")


class TransportError(Exception):
    """The VTN could not be reached, or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class Transport(Protocol):
    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> Answer:
        """The VTN's answer; raises TransportError when it cannot be had."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class VenOptions:
    base_url: str  # the VTN's, e.g. https://vtn.example/openadr3/3.0.1
    target: str  # "site" or "site/circuit": where the events' limits go
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    token_url: str = ""  # "": {base_url}/auth/token
    program_names: tuple[str, ...] = ()  # (): every program the VTN lists
    ven_name: str = "chargegrid"  # the reports' clientName, matched against VEN_NAME targets
    poll_interval_s: float = 30.0
    report_interval_s: float = 900.0


# --- events to limits and prices, pure --------------------------------------------------------


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


# --- the VEN -----------------------------------------------------------------------------------


@dataclass
class _Tracked:
    """An event of the VTN and what the VEN made of it."""

    event: oadr.Event
    program: oadr.Program
    seen_at: datetime  # what "now" means in this version of the event
    applied: bool = False
    limits: tuple[LimitBlock, ...] = ()
    prices: tuple[PriceBlock, ...] = ()
    slots: list[oadr.Slot] = field(default_factory=list)
    ended: bool = False
    asked: tuple[str, ...] = ()  # report payload types asked that the VEN makes
    since: datetime | None = None  # start of the span the next report covers
    energy_mark_wh: Decimal = Decimal(0)  # the site's energy counter at ``since``
    due: datetime | None = None
    final_sent: bool = False


class OpenAdr3Ven:
    def __init__(
        self,
        options: VenOptions,
        balancer: LoadBalancer,
        sites: Sites,
        transport: Transport,
        clock: Clock,
        *,
        tick_s: float = 1.0,
    ) -> None:
        self.options = options
        self.balancer = balancer
        self.sites = sites
        self.transport = transport
        self.clock = clock
        self.tick_s = tick_s
        self.base_url = options.base_url.rstrip("/")
        self.vtn = urlsplit(self.base_url).netloc or self.base_url
        self.token_url = options.token_url or f"{self.base_url}/auth/token"
        site_id, _, circuit = options.target.partition("/")
        self.site_id, self.circuit = site_id, circuit or None
        self.log = log.bind(vtn=self.vtn)
        self.programs: dict[str, oadr.Program] = {}
        self.events: dict[str, _Tracked] = {}
        self.energy_wh = Decimal(0)  # imported by the target's cars since start
        self._secret = oadr.Secret(options.client_secret)
        self._token: oadr.Secret | None = None
        self._token_until: datetime | None = None
        self._missing: frozenset[str] = frozenset()
        self._tx_energy: dict[int, Decimal] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop_listening: Callable[[], None] | None = None
        sites.listen(self._site_changed)

    async def start(self, bus: EventBus) -> None:
        self._stop_listening = bus.listen(self.on_event)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.transport.close()

    def _site_changed(self, site_id: str) -> None:
        """A SIMPLE level is a share of the circuit's own limits: the next poll applies each
        event again to the site as it is now."""
        if site_id == self.site_id:
            for tracked in self.events.values():
                tracked.applied = False

    def source(self, event_id: str) -> str:
        return f"openadr3:{self.vtn}:{event_id}"

    async def _run(self) -> None:
        next_poll = self.clock.now()
        while True:
            now = self.clock.now()
            if now >= next_poll:
                next_poll = now + timedelta(seconds=self.options.poll_interval_s)
                await self._guarded(self.poll(), "poll")
            await self._guarded(self.tick(), "tick")
            await asyncio.sleep(self.tick_s)

    async def _guarded(self, work: Any, what: str) -> None:
        try:
            await work
        except TransportError as exc:
            self.log.warning("OpenADR 3 VTN unreachable", during=what, error=str(exc))
        except oadr.OpenAdrError as exc:
            self.log.warning(
                "OpenADR 3 VTN answer not usable", during=what, status=exc.status, error=str(exc)
            )
        except Exception:
            self.log.exception("OpenADR 3 VEN failed", during=what)

    # --- polling ------------------------------------------------------------------------------

    async def poll(self) -> None:
        """Fetch the programs and events once and apply what changed."""
        programs_complete = await self._fetch_programs()
        bodies, complete = await self._search("events")
        now = self.clock.now()
        seen: set[str] = set()
        for body in bodies:
            try:
                event = oadr.decode_event(body)
            except oadr.OpenAdrError as exc:
                event_id = oadr.object_id(body)
                self.log.warning("OpenADR 3 event not readable", event_id=event_id, error=str(exc))
                if event_id in self.events:
                    seen.add(event_id)  # what it set holds until it can be read again
                continue
            if isinstance(event.id, UnsetType):
                self.log.warning("OpenADR 3 event without an id", program=event.program_id)
                continue
            program = self.programs.get(event.program_id)
            resource = self.options.target
            if program is None or not targeted(event.targets, self.options.ven_name, resource):
                continue
            seen.add(event.id)
            self._track(event.id, event, program, now)
        if not (complete and programs_complete):
            return  # an event not seen may be on a page not read: none is gone
        for gone in set(self.events) - seen:
            tracked = self.events.pop(gone)
            self.log.info("OpenADR 3 event gone", event_id=gone, program=tracked.event.program_id)
            self._set(gone, tracked, (), ())

    async def _fetch_programs(self) -> bool:
        """Whether the listing was complete (if not, the programs known before are kept)."""
        found: dict[str, oadr.Program] = {}
        bodies, complete = await self._search("programs")
        for body in bodies:
            try:
                program = oadr.decode_program(body)
            except oadr.OpenAdrError as exc:
                program_id = oadr.object_id(body)
                self.log.warning(
                    "OpenADR 3 program not readable", program=program_id, error=str(exc)
                )
                if program_id in self.programs:
                    found[program_id] = self.programs[program_id]
                continue
            if isinstance(program.id, UnsetType):
                continue
            names = self.options.program_names
            if not names or program.program_name in names:
                found[program.id] = program
        if not complete:
            found = {**self.programs, **found}
        missing = frozenset(self.options.program_names) - {p.program_name for p in found.values()}
        if missing != self._missing and missing:
            self.log.warning("OpenADR 3 programs not found at the VTN", programs=sorted(missing))
        self._missing = missing
        self.programs = found
        return complete

    def _track(
        self, event_id: str, event: oadr.Event, program: oadr.Program, now: datetime
    ) -> None:
        tracked = self.events.get(event_id)
        if tracked is None or tracked.event != event or tracked.program != program:
            fresh = _Tracked(event, program, now)
            if tracked is not None:  # a change: the reports go on where they were
                fresh.since, fresh.energy_mark_wh, fresh.due = (
                    tracked.since,
                    tracked.energy_mark_wh,
                    tracked.due,
                )
                fresh.limits, fresh.prices = tracked.limits, tracked.prices
                self.log.info("OpenADR 3 event changed", event_id=event_id)
            else:
                self.log.info("OpenADR 3 event", event_id=event_id, program=program.program_name)
            self.events[event_id] = tracked = fresh
        if not tracked.applied:
            self._apply(event_id, tracked, now)

    def _apply(self, event_id: str, tracked: _Tracked, now: datetime) -> None:
        try:
            site = self.sites.get(self.site_id)
        except SiteNotFound:
            self.log.warning("OpenADR 3 site not found", site=self.site_id, event_id=event_id)
            return
        circuit = self.circuit or site.root.id
        if circuit not in {c.id for c in site.circuits}:
            self.log.warning("OpenADR 3 circuit not found", site=self.site_id, circuit=circuit)
            return
        try:
            tracked.slots = oadr.event_slots(tracked.event, tracked.seen_at)
            blocks = event_blocks(tracked.event, tracked.program, site, circuit, tracked.seen_at)
        except oadr.OpenAdrError as exc:
            self.log.warning("OpenADR 3 event not applied", event_id=event_id, error=str(exc))
            blocks = EventBlocks((), (), ())
            tracked.slots = []
        for reason in blocks.ignored:
            self.log.info("OpenADR 3 payload not applied", event_id=event_id, reason=reason)
        tracked.applied = True
        tracked.asked = self._asked(event_id, tracked.event)
        end = oadr.event_end(tracked.slots)
        tracked.ended = end is not None and end <= now
        if tracked.ended:
            self._set(event_id, tracked, (), ())
        else:
            self._set(event_id, tracked, blocks.limits, blocks.prices)

    def _asked(self, event_id: str, event: oadr.Event) -> tuple[str, ...]:
        asked = [d.payload_type for d in event.report_descriptors or ()]
        others = sorted({a for a in asked if a not in REPORTED})
        if others:
            self.log.info("OpenADR 3 reports not made", event_id=event_id, payload_types=others)
        return tuple(a for a in REPORTED if a in asked)

    def _set(
        self,
        event_id: str,
        tracked: _Tracked,
        limits: tuple[LimitBlock, ...],
        prices: tuple[PriceBlock, ...],
    ) -> None:
        try:
            if limits != tracked.limits:
                self.balancer.set_timeline(self.site_id, self.source(event_id), limits)
            if prices != tracked.prices:
                self.balancer.set_prices(self.site_id, self.source(event_id), prices)
        except SiteNotFound:
            self.log.warning("OpenADR 3 site not found", site=self.site_id, event_id=event_id)
            tracked.applied = False
            return
        if limits != tracked.limits or prices != tracked.prices:
            self.log.info(
                "OpenADR 3 event applied", event_id=event_id, limits=len(limits), prices=len(prices)
            )
        tracked.limits, tracked.prices = limits, prices

    # --- ends and reports ---------------------------------------------------------------------

    async def tick(self) -> None:
        """End the events whose last interval is over; send the reports that are due."""
        now = self.clock.now()
        for event_id, tracked in list(self.events.items()):
            if not tracked.applied:
                continue
            end = oadr.event_end(tracked.slots)
            if not tracked.ended and end is not None and end <= now:
                tracked.ended = True
                self.log.info("OpenADR 3 event ended", event_id=event_id)
                self._set(event_id, tracked, (), ())
            if tracked.asked and tracked.slots:
                await self._report_if_due(event_id, tracked, now, end)

    async def _report_if_due(
        self, event_id: str, tracked: _Tracked, now: datetime, end: datetime | None
    ) -> None:
        start = min(s.start for s in tracked.slots)
        if now < start or tracked.final_sent:
            return
        if tracked.since is None:
            if end is not None and tracked.seen_at >= end:
                tracked.final_sent = True  # over before the VEN saw it: nothing it measured
                return
            tracked.since = max(start, tracked.seen_at)
            tracked.energy_mark_wh = self.energy_wh
            tracked.due = tracked.since + timedelta(seconds=self.options.report_interval_s)
        final = tracked.ended and end is not None
        if not final and (tracked.due is None or now < tracked.due):
            return
        until = min(now, end) if final and end is not None else now
        tracked.due = now + timedelta(seconds=self.options.report_interval_s)
        if await self._report(event_id, tracked, tracked.since, until):
            tracked.since, tracked.energy_mark_wh = until, self.energy_wh
            tracked.final_sent = final

    async def _report(
        self, event_id: str, tracked: _Tracked, since: datetime, until: datetime
    ) -> bool:
        usage_kwh = max(0.0, float(self.energy_wh - tracked.energy_mark_wh) / 1000.0)
        try:
            demand_kw = max(0.0, self.balancer.site_power_w(self.site_id, self.circuit) / 1000.0)
        except SiteNotFound:
            demand_kw = 0.0
        values = {"USAGE": (round(usage_kwh, 3), "KWH"), "DEMAND": (round(demand_kw, 3), "KW")}
        interval_id = next(
            (s.interval_id for s in reversed(tracked.slots) if s.start <= since),
            tracked.slots[0].interval_id,
        )
        report = oadr.Report(
            program_id=tracked.event.program_id,
            event_id=event_id,
            client_name=self.options.ven_name,
            report_name=f"{self.options.ven_name} {self.options.target} {since.isoformat()}",
            payload_descriptors=tuple(
                oadr.ReportPayloadDescriptor(
                    object_type="REPORT_PAYLOAD_DESCRIPTOR",
                    payload_type=kind,
                    reading_type="DIRECT_READ",
                    units=values[kind][1],
                )
                for kind in tracked.asked
            ),
            resources=(
                oadr.ReportResource(
                    resource_name=self.options.target,
                    intervals=(
                        oadr.Interval(
                            id=interval_id,
                            interval_period=oadr.IntervalPeriod(
                                start=since, duration=oadr.Duration.of(max(until - since, _ZERO))
                            ),
                            payloads=tuple(
                                oadr.ValuesMap(type=kind, values=(values[kind][0],))
                                for kind in tracked.asked
                            ),
                        ),
                    ),
                ),
            ),
        )
        try:
            await self._call(
                "POST", oadr.collection_url(self.base_url, "reports"), oadr.encode(report)
            )
        except (TransportError, oadr.OpenAdrError) as exc:
            self.log.warning("OpenADR 3 report not delivered", event_id=event_id, error=str(exc))
            return False
        self.log.info("OpenADR 3 report sent", event_id=event_id, usage_kwh=values["USAGE"][0])
        return True

    # --- energy, from the transactions' meter values ------------------------------------------

    def on_event(self, envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(event, events.TransactionStarted):
            self._tx_energy[event.transaction_id] = event.energy_wh or Decimal(0)
            return
        if not isinstance(event, events.TransactionUpdated | events.TransactionEnded):
            return
        if event.energy_wh is None:
            return
        delta = event.energy_wh - self._tx_energy.get(event.transaction_id, Decimal(0))
        if isinstance(event, events.TransactionEnded):
            self._tx_energy.pop(event.transaction_id, None)
        else:
            self._tx_energy[event.transaction_id] = event.energy_wh
        found = self.sites.slot(event.station_id, event.evse_id)
        if delta <= 0 or found is None:
            return
        site, slot = found
        if site.id == self.site_id and (
            self.circuit is None or self.circuit in site.path(slot.circuit)
        ):
            self.energy_wh += delta

    # --- HTTP ---------------------------------------------------------------------------------

    async def _search(self, collection: str) -> tuple[list[bytes], bool]:
        """Every object of a collection, page by page until an empty one, and whether that was
        reached. ``skip`` counts the objects received: a VTN may answer fewer than ``limit``
        (a lower maximum of its own) and have more. A VTN that ignores ``skip`` is read once
        (a page like the last ends the listing); :data:`MAX_PAGES` pages without an end leave
        it incomplete."""
        out: list[bytes] = []
        last: list[bytes] | None = None
        for _ in range(MAX_PAGES):
            params = {"skip": len(out), "limit": oadr.PAGE_LIMIT}
            url = oadr.collection_url(self.base_url, collection, params)
            items = oadr.decode_array(await self._call("GET", url))
            if not items or items == last:
                return out, True
            out += items
            last = items
        self.log.warning(
            "OpenADR 3 listing cut short", collection=collection, pages=MAX_PAGES, read=len(out)
        )
        return out, False

    async def _call(self, method: str, url: str, body: bytes | None = None) -> bytes:
        """The body of the VTN's 2xx answer; a 401 renews the token and tries once more."""
        for attempt in range(2):
            headers = {"Accept": oadr.JSON}
            token = await self._bearer()
            if token is not None:
                headers["Authorization"] = f"Bearer {token.reveal()}"
            if body is not None:
                headers["Content-Type"] = oadr.JSON
            answer = await self.transport.send(method, url, headers, body)
            if answer.status == 401 and token is not None and attempt == 0:
                self._token = None
                continue
            if not 200 <= answer.status < 300:
                raise oadr.refusal(answer.status, answer.body)
            return answer.body
        raise AssertionError("unreachable")  # pragma: no cover

    async def _bearer(self) -> oadr.Secret | None:
        if not self.options.client_id:
            return None
        now = self.clock.now()
        if self._token is not None and (self._token_until is None or now < self._token_until):
            return self._token
        form = oadr.token_request(self.options.client_id, self._secret)
        answer = await self.transport.send(
            "POST", self.token_url, {"Content-Type": oadr.FORM, "Accept": oadr.JSON}, form
        )
        if answer.status != 200:
            raise oadr.refusal(answer.status, answer.body)
        granted = oadr.decode_token(answer.body)
        self._token = granted.access_token
        self._token_until = None
        if not isinstance(granted.expires_in, UnsetType):
            lasts = min(max(granted.expires_in, 0), _TOKEN_LONGEST_S)
            self._token_until = now + timedelta(seconds=lasts) - TOKEN_MARGIN
        self.log.info("OpenADR 3 token granted", expires_in=granted.expires_in)
        return self._token
