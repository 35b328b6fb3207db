"""What every part of the :class:`~chargegrid.service.openadr3.OpenAdr3Ven` shares: its options,
its constructor and state (the programs and the events tracked, the energy counted, the client of
the VTN), and setting what an event asks on the balancer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

import structlog

from chargegrid.protocols import openadr3 as oadr
from chargegrid.service.balancing import LimitBlock, LoadBalancer, PriceBlock
from chargegrid.service.openadr3.client import Transport, VtnClient
from chargegrid.service.ports import Clock
from chargegrid.service.sites import SiteNotFound, Sites

log = structlog.get_logger(__package__)  # one logger name for the whole VEN


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


@dataclass
class Tracked:
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


class VenBase:
    """The state and helpers the mixins of :class:`OpenAdr3Ven` build on."""

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
        self.http = VtnClient(
            transport,
            clock,
            self.base_url,
            self.token_url,
            options.client_id,
            options.client_secret,
            self.vtn,
        )
        self.programs: dict[str, oadr.Program] = {}
        self.events: dict[str, Tracked] = {}
        self.energy_wh = Decimal(0)  # imported by the target's cars since start
        self._missing: frozenset[str] = frozenset()
        self._tx_energy: dict[int, Decimal] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop_listening: Callable[[], None] | None = None
        sites.listen(self._site_changed)

    def _site_changed(self, site_id: str) -> None:
        """A SIMPLE level is a share of the circuit's own limits: the next poll applies each
        event again to the site as it is now."""
        if site_id == self.site_id:
            for tracked in self.events.values():
                tracked.applied = False

    def source(self, event_id: str) -> str:
        return f"openadr3:{self.vtn}:{event_id}"

    def _set(
        self,
        event_id: str,
        tracked: Tracked,
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
