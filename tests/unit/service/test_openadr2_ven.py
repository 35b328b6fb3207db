"""The OpenADR 2.0b VEN's use case (:class:`chargegrid.service.openadr2.Ven`) on a recording
grid: an event applied as its own source, modifications replacing it (older ones ignored),
cancellation, implied cancellation, expiry, the opt policy, test events, and events it cannot
apply (opted out of, what they set before removed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import Circuit, Site
from chargegrid.service.balancing import LimitBlock, PriceBlock
from chargegrid.service.openadr2 import Opt, Ven
from chargegrid.service.sites import SiteNotFound
from chargegrid.testing.fakes import FixedClock

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SITE = Site("depot", (Circuit("grid", None, 32.0), Circuit("garage", "grid", 16.0)))


class Grid:
    """The balancer, as far as the VEN sees it: what each source set last."""

    def __init__(self, draw_w: float = 0.0) -> None:
        self.limits: dict[tuple[str, str], list[LimitBlock]] = {}
        self.prices: dict[tuple[str, str], list[PriceBlock]] = {}
        self.draw_w = draw_w
        self.asked: list[tuple[str, str | None]] = []

    def set_timeline(self, site_id: str, source: str, blocks: Sequence[LimitBlock]) -> None:
        self.limits[site_id, source] = list(blocks)

    def set_prices(self, site_id: str, source: str, blocks: Sequence[PriceBlock]) -> None:
        self.prices[site_id, source] = list(blocks)

    def site_power_w(self, site_id: str, circuit: str | None = None) -> float:
        if site_id != SITE.id:
            raise SiteNotFound(site_id)
        self.asked.append((site_id, circuit))
        return self.draw_w

    def in_force(self) -> dict[str, list[LimitBlock]]:
        return {source: blocks for (_, source), blocks in self.limits.items() if blocks}


class Sites:
    def __init__(self, *sites: Site) -> None:
        self.sites = {s.id: s for s in sites}

    def get(self, site_id: str) -> Site:
        if site_id not in self.sites:
            raise SiteNotFound(f"no site {site_id}")
        return self.sites[site_id]


def _event(
    event_id: str = "ev-1",
    modification: int = 0,
    status: str = "far",
    level: float = 2,
    *,
    start: datetime = T0,
    test: bool = False,
    signal: str = "SIMPLE",
    kind: str = "level",
) -> dict[str, Any]:
    return {
        "event_descriptor": {
            "event_id": event_id,
            "modification_number": modification,
            "event_status": status,
            "test_event": test,
        },
        "active_period": {"dtstart": start, "duration": HOUR},
        "event_signals": [
            {
                "signal_name": signal,
                "signal_type": kind,
                "intervals": [{"duration": HOUR, "signal_payload": level}],
            }
        ],
        "response_required": "always",
    }


def _ven(target: str = "depot", **kwargs: Any) -> tuple[Ven, Grid, FixedClock]:
    grid = Grid(draw_w=kwargs.pop("draw_w", 0.0))
    clock = FixedClock(T0 - HOUR)
    return Ven(grid, Sites(SITE), clock, "vtn.example", target, **kwargs), grid, clock


def test_an_event_is_a_source_and_a_modification_replaces_it() -> None:
    ven, grid, _ = _ven()
    assert ven.on_event(_event(level=2)) is Opt.IN
    source = "openadr2:vtn.example:ev-1"
    [block] = grid.limits["depot", source]
    assert block.circuit == "grid" and block.limit == CircuitLimit(limit_a=16.0)
    assert ven.on_event(_event(modification=1, level=1)) is Opt.IN
    assert grid.limits["depot", source][0].limit == CircuitLimit(limit_a=24.0)
    # an older modification arriving late changes nothing
    assert ven.on_event(_event(modification=0, level=3)) is Opt.IN
    assert grid.limits["depot", source][0].limit == CircuitLimit(limit_a=24.0)
    assert ven.held() == ["ev-1"]


def test_a_circuit_of_the_site() -> None:
    ven, grid, _ = _ven("depot/garage", draw_w=9_000.0)
    assert ven.on_event(_event(signal="LOAD_DISPATCH", kind="delta", level=-3)) is Opt.IN
    [block] = grid.limits["depot", "openadr2:vtn.example:ev-1"]
    assert (block.circuit, block.limit) == ("garage", CircuitLimit(limit_w=6_000.0))
    assert grid.asked == [("depot", "garage")]
    assert ven.power_w() == 9_000.0


@pytest.mark.parametrize("status", ["cancelled", "completed"])
def test_an_ended_event_takes_its_limits(status: str) -> None:
    ven, grid, _ = _ven()
    ven.on_event(_event())
    assert ven.on_event(_event(modification=1, status=status)) is Opt.IN
    assert grid.in_force() == {} and ven.held() == []


def test_events_no_longer_listed_are_cancelled() -> None:
    ven, grid, _ = _ven()
    ven.on_event(_event("ev-1"))
    ven.on_event(_event("ev-2"))
    ven.listed({"ev-2"})
    assert list(grid.in_force()) == ["openadr2:vtn.example:ev-2"]
    ven.listed(set())
    assert grid.in_force() == {}


def test_events_over_are_removed() -> None:
    ven, grid, clock = _ven()
    ven.on_event(_event())
    clock.advance(3600 * 1.5)  # the event runs 14:00 to 15:00: 14:30
    ven.expire()
    assert ven.held() == ["ev-1"]
    clock.advance(3600)
    ven.expire()
    assert ven.held() == [] and grid.in_force() == {}


def test_prices_are_set_and_taken_back() -> None:
    ven, grid, _ = _ven()
    assert ven.on_event(_event(signal="ELECTRICITY_PRICE", kind="price", level=0.3)) is Opt.IN
    source = "openadr2:vtn.example:ev-1"
    assert grid.prices["depot", source] == [PriceBlock(0.3, "", T0, T0 + HOUR)]
    ven.on_event(_event(modification=1, status="cancelled"))
    assert grid.prices["depot", source] == []


def test_opt_out_policy_applies_nothing() -> None:
    ven, grid, _ = _ven(opt_in=False)
    assert ven.on_event(_event()) is Opt.OUT
    assert ven.on_event(_event(modification=1, status="cancelled")) is Opt.OUT
    assert grid.limits == {}


def test_a_test_event_is_acknowledged_not_applied() -> None:
    ven, grid, _ = _ven()
    assert ven.on_event(_event(test=True)) is Opt.IN
    assert grid.limits == {}


@pytest.mark.parametrize(
    "raw",
    [
        _event(level=9),  # SIMPLE level 9
        _event(signal="BID_LOAD", kind="setpoint"),  # nothing chargegrid acts on
        {**_event(), "active_period": "soon"},  # does not decode
        "not an event",
    ],
)
def test_what_cannot_be_applied_is_opted_out_of(raw: Any) -> None:
    ven, grid, _ = _ven()
    assert ven.on_event(raw) is Opt.OUT
    assert grid.in_force() == {} and ven.held() == []


@pytest.mark.parametrize(
    "raw",
    [
        _event(modification=1, level=9),  # SIMPLE level 9
        _event(modification=1, signal="SIMPLE", kind="setpoint"),  # SIMPLE of another type
        _event(modification=1, signal="BID_LOAD", kind="setpoint"),  # nothing chargegrid acts on
        {**_event(modification=1), "active_period": "soon"},  # does not decode
    ],
)
def test_a_bad_modification_keeps_the_last_one_applied(raw: Any) -> None:
    ven, grid, clock = _ven()
    ven.on_event(_event(level=3))  # a load shed: 0 A
    before = dict(grid.in_force())
    assert ven.on_event(raw) is Opt.OUT
    assert grid.in_force() == before and ven.held() == ["ev-1"]
    assert ven.on_event(_event(modification=2, level=1)) is Opt.IN  # a good one replaces it
    [block] = grid.limits["depot", "openadr2:vtn.example:ev-1"]
    assert block.limit == CircuitLimit(limit_a=24.0)
    clock.advance(3600 * 2 + 1)  # and it ends as the event does
    ven.expire()
    assert grid.in_force() == {} and ven.held() == []


def test_answers_are_forgotten_when_not_listed_or_over() -> None:
    ven, _, clock = _ven()
    ven.on_event(_event("shed"))
    ven.on_event(_event("test", test=True))
    ven.on_event(_event("bad", level=9))
    ven.on_event(_event("gone"))
    ven.on_event(_event("gone", modification=1, status="cancelled"))
    assert ven.answered() == ["bad", "gone", "shed", "test"]
    ven.listed({"shed", "test", "bad"})
    assert ven.answered() == ["bad", "shed", "test"]
    clock.advance(3600 * 2 + 1)  # all ran 14:00 to 15:00
    ven.expire()
    assert ven.answered() == [] and ven.held() == []
    opted_out, _, _ = _ven(opt_in=False)
    opted_out.on_event(_event())
    opted_out.listed(set())
    assert opted_out.answered() == []


def test_a_site_that_is_not_there() -> None:
    ven, grid, _ = _ven("nowhere")
    assert ven.on_event(_event()) is Opt.OUT
    assert grid.limits == {}
    assert ven.power_w() == 0.0
    ven2, _, _ = _ven("depot/attic")
    assert ven2.on_event(_event()) is Opt.OUT


def test_a_target_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="site/circuit"):
        _ven("a/b/c")
