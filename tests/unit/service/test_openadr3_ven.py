"""The OpenADR 3 VEN: the pure mapping of events to limits and prices (the spec's example event
among them), targets, and the VEN itself polling an in-memory VTN (token and its renewal,
programs followed, events changed, deleted, unreadable or over, reports of energy and power),
with a recording balancer, a fixed clock and sites in memory."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openadr3_oracle as oracle
import pytest
from structlog.testing import capture_logs

from chargegrid.domain import events
from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import Circuit, EvseSlot, Site
from chargegrid.protocols import openadr3 as oadr
from chargegrid.service.balancing import LimitBlock, PriceBlock
from chargegrid.service.events import Envelope
from chargegrid.service.openadr3 import (
    MAX_PAGES,
    Answer,
    OpenAdr3Ven,
    TransportError,
    VenOptions,
    event_blocks,
    targeted,
)
from chargegrid.service.sites import Sites
from chargegrid.testing.fakes import FixedClock

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
SITE = Site(
    "depot",
    (Circuit("grid", None, limit_a=63, limit_w=40000), Circuit("garage", "grid", limit_a=32)),
    (EvseSlot("CS-1", 1, "garage"),),
)
SECRET = "s3cret-client-password"
TOKEN = "tok-4f9a1c"


def _event(payloads: list[dict[str, Any]], **extra: Any) -> oadr.Event:
    body = {
        "id": "e1",
        "programID": "p1",
        "intervalPeriod": {"start": "2026-03-02T12:00:00Z", "duration": "PT1H"},
        "intervals": [{"id": i, "payloads": [p]} for i, p in enumerate(payloads)],
        **extra,
    }
    return oadr.decode_event(json.dumps(body).encode())


# --- events to limits and prices ---------------------------------------------------------------


def test_the_example_event_is_a_price() -> None:
    body = oracle.example("event")
    event = oadr.decode_event(json.dumps(body).encode())
    blocks = event_blocks(event, None, SITE, "grid", T0)
    start = datetime(2023, 6, 15, 9, 30, tzinfo=UTC)
    assert blocks.prices == (PriceBlock(0.17, "USD", start, start + timedelta(hours=1)),)
    assert blocks.limits == () and blocks.ignored == ()


def test_capacity_limits_in_kw_w_and_amps() -> None:
    descriptors = [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": "AMPS"}]
    kw = _event([{"type": "IMPORT_CAPACITY_LIMIT", "values": [11.5]}])
    amps = _event(
        [{"type": "IMPORT_CAPACITY_LIMIT", "values": [20]}], payloadDescriptors=descriptors
    )
    hour = timedelta(hours=1)
    assert event_blocks(kw, None, SITE, "grid", T0).limits == (
        LimitBlock("grid", CircuitLimit(limit_w=11500.0), T0, T0 + hour),
    )
    assert event_blocks(amps, None, SITE, "garage", T0).limits == (
        LimitBlock("garage", CircuitLimit(limit_a=20.0), T0, T0 + hour),
    )


def test_simple_levels_are_shares_of_the_circuits_own_limits() -> None:
    event = _event([{"type": "SIMPLE", "values": [level]} for level in (0, 1, 2, 3)])
    limits = event_blocks(event, None, SITE, "grid", T0).limits
    hour = timedelta(hours=1)
    assert limits == (
        LimitBlock("grid", CircuitLimit(limit_a=47.25, limit_w=30000.0), T0 + hour, T0 + 2 * hour),
        LimitBlock(
            "grid", CircuitLimit(limit_a=31.5, limit_w=20000.0), T0 + 2 * hour, T0 + 3 * hour
        ),
        LimitBlock("grid", CircuitLimit(limit_a=0.0, limit_w=0.0), T0 + 3 * hour, T0 + 4 * hour),
    )
    on_garage = event_blocks(event, None, SITE, "garage", T0).limits
    assert on_garage[0].limit == CircuitLimit(limit_a=24.0)


def test_prices_take_the_program_currency_and_units() -> None:
    program = oadr.decode_program(
        b'{"id": "p1", "programName": "TOU", "payloadDescriptors": [{"objectType": '
        b'"EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "PRICE", "units": "MWH", "currency": "EUR"}]}'
    )
    event = _event([{"type": "PRICE", "values": [250]}])
    [price] = event_blocks(event, program, SITE, "grid", T0).prices
    assert (price.price_per_kwh, price.currency) == (0.25, "EUR")
    own = _event(
        [{"type": "PRICE", "values": [0.3]}],
        payloadDescriptors=[{"payloadType": "PRICE", "units": "KWH", "currency": "CHF"}],
    )
    assert event_blocks(own, program, SITE, "grid", T0).prices[0].currency == "CHF"


def test_what_is_not_applied_is_said() -> None:
    event = _event(
        [
            {"type": "GHG", "values": [100]},
            {"type": "SIMPLE", "values": [7]},
            {"type": "IMPORT_CAPACITY_LIMIT", "values": [-3]},
            {"type": "PRICE", "values": ["cheap"]},
            {"type": "IMPORT_CAPACITY_LIMIT", "values": [True]},
        ]
    )
    blocks = event_blocks(event, None, SITE, "grid", T0)
    assert (blocks.limits, blocks.prices) == ((), ())
    assert blocks.ignored == (
        "GHG: not a payload type chargegrid applies",
        "SIMPLE in interval 1: level 7.0 is not 0 to 3",
        "IMPORT_CAPACITY_LIMIT in interval 2: a negative capacity (-3.0)",
        "PRICE in interval 3: no number",
        "IMPORT_CAPACITY_LIMIT in interval 4: no number",
    )
    no_limit = Site("s", (Circuit("grid", None),))
    simple = _event([{"type": "SIMPLE", "values": [1]}])
    assert event_blocks(simple, None, no_limit, "grid", T0).ignored == (
        "SIMPLE in interval 0: the circuit has no limit of its own to take a share of",
    )


def test_targets() -> None:
    ven = oadr.ValuesMap(type="VEN_NAME", values=("chargegrid", "other"))
    resource = oadr.ValuesMap(type="RESOURCE_NAME", values=("depot",))
    group = oadr.ValuesMap(type="GROUP", values=("north",))
    assert targeted(None, "chargegrid", "depot")
    assert targeted([group, "group-1"], "chargegrid", "depot")
    assert targeted([ven], "chargegrid", "x") and targeted([resource], "x", "depot")
    assert not targeted([ven, resource], "someone", "else")


# --- the VEN against an in-memory VTN ------------------------------------------------------------


class MemorySiteStore:
    def __init__(self, *sites: Site) -> None:
        self.sites = {s.id: s for s in sites}

    async def all(self) -> list[Site]:
        return list(self.sites.values())

    async def save(self, site: Site, at: datetime) -> None:
        self.sites[site.id] = site

    async def delete(self, site_id: str) -> bool:
        return self.sites.pop(site_id, None) is not None

    async def stamp(self) -> Hashable:
        return len(self.sites)

    async def close(self) -> None:
        """Nothing to close."""


@dataclass
class RecordingBalancer:
    sites: Sites
    power_w: float = 0.0
    timelines: dict[str, list[LimitBlock]] = field(default_factory=dict)
    prices: dict[str, list[PriceBlock]] = field(default_factory=dict)
    calls: int = 0

    def set_timeline(self, site_id: str, source: str, blocks: Sequence[LimitBlock]) -> None:
        self.sites.get(site_id)
        self.timelines[source] = list(blocks)
        self.calls += 1

    def set_prices(self, site_id: str, source: str, blocks: Sequence[PriceBlock]) -> None:
        self.sites.get(site_id)
        self.prices[source] = list(blocks)
        self.calls += 1

    def site_power_w(self, site_id: str, circuit: str | None = None) -> float:
        self.sites.get(site_id)
        return self.power_w


@dataclass
class MemoryVtn:
    """A VTN in memory: its programs and events (JSON-able, or raw bytes), the token it grants,
    and what it received."""

    programs: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, str]] = field(default_factory=list)
    refuse_next: int | None = None
    down: bool = False
    page_cap: int = oadr.PAGE_LIMIT  # the most the VTN answers per page, whatever is asked
    pages_served: int = 0
    fail_page: int | None = None  # the page of a listing answered 500 (0: the first)

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> Answer:
        if self.down:
            raise TransportError("connection refused")
        path = urlsplit(url).path
        if path == "/oadr3/auth/token":
            form = {k: v[0] for k, v in parse_qs((body or b"").decode()).items()}
            self.tokens.append(form)
            if form.get("client_secret") != SECRET:
                return Answer(400, b'{"error": "invalid_client"}')
            grant = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}
            return Answer(200, json.dumps(grant).encode())
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return Answer(403, b'{"title": "Forbidden"}')
        if self.refuse_next is not None:
            status, self.refuse_next = self.refuse_next, None
            return Answer(status, b'{"title": "Unauthorized", "detail": "expired"}')
        if method == "POST" and path == "/oadr3/reports":
            self.reports.append(json.loads(body or b""))
            return Answer(201, body or b"")
        items = {"/oadr3/programs": self.programs, "/oadr3/events": self.events}[path]
        query = parse_qs(urlsplit(url).query)
        skip, limit = int(query["skip"][0]), int(query["limit"][0])
        if path == "/oadr3/events":
            self.pages_served += 1
            if self.fail_page is not None and skip >= self.fail_page * self.page_cap:
                return Answer(500, b'{"title": "Internal Server Error"}')
        page = items[skip : skip + min(limit, self.page_cap)]
        raw = [i if isinstance(i, bytes) else json.dumps(i).encode() for i in page]
        return Answer(200, b"[" + b",".join(raw) + b"]")

    async def close(self) -> None:
        """Nothing to close."""


@dataclass
class World:
    ven: OpenAdr3Ven
    vtn: MemoryVtn
    balancer: RecordingBalancer
    clock: FixedClock


@pytest.fixture
async def world() -> World:
    clock = FixedClock(T0)
    sites = Sites(MemorySiteStore(SITE), clock)
    await sites.load()
    balancer = RecordingBalancer(sites)
    vtn = MemoryVtn(programs=[{"id": "p1", "programName": "EV"}, {"id": "p2", "programName": "X"}])
    options = VenOptions(
        "http://vtn.test/oadr3/",
        "depot/garage",
        client_id="ven-1",
        client_secret=SECRET,
        program_names=("EV",),
        report_interval_s=600,
    )
    ven = OpenAdr3Ven(options, balancer, sites, vtn, clock)  # type: ignore[arg-type]
    return World(ven, vtn, balancer, clock)


def _capacity(kw: float, event_id: str = "e1", program: str = "p1", **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "programID": program,
        "intervalPeriod": {"start": "2026-03-02T12:00:00Z", "duration": "PT1H"},
        "intervals": [{"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [kw]}]}],
        **extra,
    }


SOURCE = "openadr3:vtn.test:e1"


async def test_events_of_the_programs_followed_become_limits(world: World) -> None:
    world.vtn.events = [_capacity(7.0), _capacity(1.0, "e2", "p2")]
    with capture_logs() as logs:
        await world.ven.poll()
    assert world.balancer.timelines == {
        SOURCE: [LimitBlock("garage", CircuitLimit(limit_w=7000.0), T0, T0 + timedelta(hours=1))]
    }
    assert world.vtn.tokens == [
        {"grant_type": "client_credentials", "client_id": "ven-1", "client_secret": SECRET}
    ]
    assert SECRET not in repr(logs) and TOKEN not in repr(logs)
    calls = world.balancer.calls
    await world.ven.poll()  # nothing changed: nothing set again, the token reused
    assert world.balancer.calls == calls and len(world.vtn.tokens) == 1


async def test_changes_deletions_and_ends(world: World) -> None:
    world.vtn.events = [_capacity(7.0)]
    await world.ven.poll()
    world.vtn.events = [_capacity(5.0)]
    await world.ven.poll()
    assert world.balancer.timelines[SOURCE][0].limit == CircuitLimit(limit_w=5000.0)
    world.vtn.events = [b'{"id": "e1", "programID": "p1", "intervals": "garbage"}']
    with capture_logs() as logs:
        await world.ven.poll()  # unreadable: what it set holds
    assert world.balancer.timelines[SOURCE][0].limit == CircuitLimit(limit_w=5000.0)
    assert any(
        entry["event"] == "OpenADR 3 event not readable" and entry["event_id"] == "e1"
        for entry in logs
    )
    world.vtn.events = []
    await world.ven.poll()
    assert world.balancer.timelines[SOURCE] == []
    world.vtn.events = [_capacity(6.0)]
    await world.ven.poll()
    assert world.balancer.timelines[SOURCE] != []
    world.clock.advance(3600)
    await world.ven.tick()
    assert world.balancer.timelines[SOURCE] == []


async def test_a_vtn_with_smaller_pages_is_read_to_the_end(world: World) -> None:
    world.vtn.page_cap = 2
    world.vtn.events = [_capacity(7.0 + i, f"e{i}") for i in range(1, 6)]
    await world.ven.poll()
    assert sorted(world.balancer.timelines) == [f"openadr3:vtn.test:e{i}" for i in range(1, 6)]
    assert world.vtn.pages_served == 4  # 2 + 2 + 1 + the empty page that ends it
    world.vtn.events = world.vtn.events[1:]  # e1 deleted
    await world.ven.poll()
    assert {s for s, blocks in world.balancer.timelines.items() if blocks} == {
        f"openadr3:vtn.test:e{i}" for i in range(2, 6)
    }


async def test_a_listing_cut_short_removes_nothing(world: World) -> None:
    world.vtn.page_cap = 2
    world.vtn.events = [_capacity(7.0 + i, f"e{i}") for i in range(1, 6)]
    await world.ven.poll()
    in_force = dict(world.balancer.timelines)
    world.vtn.fail_page = 1  # the second page fails
    with pytest.raises(oadr.OpenAdrError):
        await world.ven.poll()
    assert world.balancer.timelines == in_force and len(world.ven.events) == 5
    # a VTN that pages on and on (one event a page, more pages than the VEN reads)
    world.vtn.fail_page, world.vtn.page_cap = None, 1
    world.vtn.events = [_capacity(1.0, f"x{i}") for i in range(MAX_PAGES + 1)]
    with capture_logs() as logs:
        await world.ven.poll()
    assert all(world.balancer.timelines[source] for source in in_force)  # none removed
    assert any(entry["event"] == "OpenADR 3 listing cut short" for entry in logs)
    world.vtn.events = world.vtn.events[:3]
    await world.ven.poll()  # complete again: what is not in it is gone
    assert {s for s, blocks in world.balancer.timelines.items() if blocks} == {
        f"openadr3:vtn.test:x{i}" for i in range(3)
    }


async def test_an_expired_token_is_renewed_and_a_vtn_down_changes_nothing(world: World) -> None:
    world.vtn.events = [_capacity(7.0)]
    await world.ven.poll()
    world.vtn.refuse_next = 401
    await world.ven.poll()
    assert len(world.vtn.tokens) == 2
    world.vtn.down = True
    with pytest.raises(TransportError):
        await world.ven.poll()
    assert world.balancer.timelines[SOURCE] != []


async def test_wrong_credentials_are_refused_without_the_secret(world: World) -> None:
    ven = world.ven
    options = dataclasses.replace(ven.options, client_secret="wrong")
    wrong = OpenAdr3Ven(options, ven.balancer, ven.sites, world.vtn, world.clock)
    with pytest.raises(oadr.OpenAdrError) as caught:
        await wrong.poll()
    assert caught.value.status == 400 and "invalid_client" in str(caught.value)


def _energy(kind: type[events.TransactionEvent], wh: int, **extra: Any) -> Envelope:
    event = kind(
        station_id="CS-1",
        at=T0,
        transaction_id=1,
        station_tx_id="tx",
        evse_id=1,
        connector_id=1,
        id_token=None,
        started_at=T0,
        energy_wh=Decimal(wh),
        **extra,
    )
    return Envelope(1, event)  # type: ignore[arg-type]


async def test_reports_of_usage_and_demand(world: World) -> None:
    asked = [{"payloadType": "USAGE"}, {"payloadType": "DEMAND"}, {"payloadType": "SOC"}]
    world.vtn.events = [_capacity(7.0, reportDescriptors=asked)]
    await world.ven.poll()
    await world.ven.tick()
    world.ven.on_event(_energy(events.TransactionStarted, 0))
    world.ven.on_event(_energy(events.TransactionUpdated, 1500))
    world.balancer.power_w = 7200.0
    world.clock.advance(599)
    await world.ven.tick()
    assert world.vtn.reports == []
    world.clock.advance(1)
    await world.ven.tick()
    [report] = world.vtn.reports
    assert oracle.errors("report", report) == []
    assert (report["programID"], report["eventID"], report["clientName"]) == (
        "p1",
        "e1",
        "chargegrid",
    )
    [resource] = report["resources"]
    assert resource["resourceName"] == "depot/garage"
    [interval] = resource["intervals"]
    assert interval["intervalPeriod"] == {"start": "2026-03-02T12:00:00Z", "duration": "PT10M"}
    assert interval["payloads"] == [
        {"type": "USAGE", "values": [1.5]},
        {"type": "DEMAND", "values": [7.2]},
    ]
    world.ven.on_event(_energy(events.TransactionEnded, 2000, stopped_at=T0))
    world.clock.advance(3000)  # the event is over: the last report, up to its end
    await world.ven.tick()
    last = world.vtn.reports[-1]["resources"][0]["intervals"][0]
    assert last["intervalPeriod"] == {"start": "2026-03-02T12:10:00Z", "duration": "PT50M"}
    assert last["payloads"][0] == {"type": "USAGE", "values": [0.5]}
    world.clock.advance(3600)
    await world.ven.tick()
    assert len(world.vtn.reports) == 2


async def test_no_site_yet_then_applied(world: World) -> None:
    world.vtn.events = [_capacity(7.0)]
    await world.ven.sites.delete("depot")
    await world.ven.poll()
    assert world.balancer.timelines == {}
    await world.ven.sites.put(SITE)
    await world.ven.poll()
    assert SOURCE in world.balancer.timelines


async def test_a_simple_level_follows_the_circuits_own_limit(world: World) -> None:
    world.vtn.events = [_capacity(0)]
    world.vtn.events[0]["intervals"][0]["payloads"] = [{"type": "SIMPLE", "values": [2]}]
    await world.ven.poll()
    assert world.balancer.timelines[SOURCE][0].limit == CircuitLimit(limit_a=16.0)
    garage = Circuit("garage", "grid", limit_a=20)
    await world.ven.sites.set_circuit("depot", garage)
    await world.ven.poll()
    assert world.balancer.timelines[SOURCE][0].limit == CircuitLimit(limit_a=10.0)
