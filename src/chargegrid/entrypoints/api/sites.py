"""Sites, their electrical trees and load balancing: ``/api/v1/sites``.

A site is written whole with ``PUT /sites/{id}`` (its circuits, the grid connection being the
one without parent, and its EVSEs with their circuit and phase wiring), or piece by piece
(``PUT``/``DELETE`` ``/sites/{id}/circuits/{circuit}`` and
``/sites/{id}/evses/{station}/{evse}``). ``GET /sites/{id}/plan`` shows what the balancer gives
each car now; ``PUT /sites/{id}/limits`` sets limits besides the circuits' own (the lower
wins), until changed again.

Statuses: 404 no such site (or circuit / EVSE on it); 409 an EVSE is on another site already;
422 a site the rules refuse (one grid connection, a tree, limits at least 0, min_a at most
max_a, EVSEs on circuits the site has, phase wiring L1L2L3 or another order or one phase), with
the rule in the message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

import msgspec
from litestar import delete, get, put
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from chargegrid.domain import events
from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import (
    DEFAULT_MIN_A,
    DEFAULT_VOLTAGE_V,
    Circuit,
    EvseSlot,
    Policy,
    Site,
    SiteError,
    slot,
)
from chargegrid.entrypoints.api.auth import OPERATOR
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import NO_NUL, SPACE, StationId, Time
from chargegrid.service.balancing import LimitBlock, LoadBalancer, PriceBlock
from chargegrid.service.sites import SiteConflict, SiteNotFound, Sites

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^/\x00]+$")]
Amps = Annotated[float, msgspec.Meta(ge=0, le=100_000)]
# Optional limits are checked by the domain (422): Litestar leaves a minimum out of a union's
# schema, so the document would promise that a negative limit is a valid request.
OptionalLimit = float | None
PolicyName = Literal["equal", "first_come", "priority", "departure", "cost"]


class CircuitIn(msgspec.Struct, forbid_unknown_fields=True):
    id: Name
    parent: Name | None = None
    limit_a: OptionalLimit = None
    limit_w: OptionalLimit = None


class CircuitChange(msgspec.Struct, forbid_unknown_fields=True):
    parent: Name | None = None
    limit_a: OptionalLimit = None
    limit_w: OptionalLimit = None


class EvseIn(msgspec.Struct, forbid_unknown_fields=True):
    station_id: StationId
    evse_id: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    circuit: Name
    wiring: Annotated[str, msgspec.Meta(max_length=8, pattern=NO_NUL)] = "L1L2L3"
    max_a: Amps = 32.0
    min_a: Amps = DEFAULT_MIN_A
    smart: bool = True
    fallback_a: OptionalLimit = None  # default: min_a on a smart EVSE, max_a on another


class EvsePlacement(msgspec.Struct, forbid_unknown_fields=True):
    circuit: Name
    wiring: Annotated[str, msgspec.Meta(max_length=8, pattern=NO_NUL)] = "L1L2L3"
    max_a: Amps = 32.0
    min_a: Amps = DEFAULT_MIN_A
    smart: bool = True
    fallback_a: OptionalLimit = None  # default: min_a on a smart EVSE, max_a on another


class SiteIn(msgspec.Struct, forbid_unknown_fields=True):
    circuits: Annotated[list[CircuitIn], msgspec.Meta(min_length=1, max_length=10_000)]
    evses: Annotated[list[EvseIn], msgspec.Meta(max_length=100_000)] = []
    name: Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)] = ""
    voltage_v: Annotated[float, msgspec.Meta(gt=0, le=1000)] = DEFAULT_VOLTAGE_V
    policy: PolicyName = "equal"


class SiteOut(msgspec.Struct):
    id: str
    name: str
    voltage_v: float
    policy: str
    circuits: list[CircuitIn]
    evses: list[EvseIn]


class LimitOut(msgspec.Struct):
    limit_a: float | None = None
    limit_w: float | None = None


class LimitIn(msgspec.Struct, forbid_unknown_fields=True):
    limit_a: OptionalLimit = None
    limit_w: OptionalLimit = None


class BlockIn(msgspec.Struct, forbid_unknown_fields=True):
    """A limit on a circuit for a time: from ``start`` (now if absent) to ``end``."""

    circuit: Name
    end: Time
    start: Time | None = None
    limit_a: OptionalLimit = None
    limit_w: OptionalLimit = None


class LimitsIn(msgspec.Struct, forbid_unknown_fields=True):
    """``circuits``: limits per circuit id from now on; ``blocks``: limits for a time. What
    was set this way before goes; an empty body lifts every such limit."""

    circuits: dict[str, LimitIn] = {}  # keys checked as circuit names of the site (422)
    blocks: Annotated[list[BlockIn], msgspec.Meta(max_length=1000)] = []


class PriceIn(msgspec.Struct, forbid_unknown_fields=True):
    """An energy price from ``start`` (now if absent) to ``end`` (until changed if absent)."""

    price_per_kwh: float
    currency: Annotated[str, msgspec.Meta(max_length=3, pattern=r"^[A-Z]{0,3}$")] = ""
    start: Time | None = None
    end: Time | None = None


class PricesIn(msgspec.Struct, forbid_unknown_fields=True):
    """The operator's energy prices (a tariff, time of use): what was set before goes."""

    blocks: Annotated[list[PriceIn], msgspec.Meta(max_length=1000)] = []


class AllocationOut(msgspec.Struct):
    evse: str
    current_a: float
    phases: list[str]
    state: str
    reason: str


class PlanOut(msgspec.Struct):
    site_id: str
    policy: str
    allocations: list[AllocationOut]
    overloaded: list[str]
    limits: dict[str, LimitOut]
    price_per_kwh: float | None = None  # in force now, from the operator or a grid signal


def _sites(ctx: Ctx) -> Sites:
    if ctx.sites is None:
        raise NotFoundException("no sites on this node")
    return ctx.sites


def _balancer(ctx: Ctx) -> LoadBalancer:
    if ctx.balancer is None:
        raise NotFoundException("no load balancing on this node")
    return ctx.balancer


_NAME = re.compile(r"^[^/\x00]{1,64}$")
_STATION = re.compile(rf"^[^/\x00{SPACE}]{{1,48}}$")


def _named(what: str, value: str, pattern: re.Pattern[str] = _NAME) -> str:
    """A name from the path, held to the rules its field has in a body (422 otherwise)."""
    if not pattern.match(value):
        raise SiteError(f"{what} {value!r} is not a valid name")
    return value


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except SiteNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except SiteConflict as exc:
        raise ClientException(str(exc), status_code=409) from exc
    except SiteError as exc:
        raise ClientException(str(exc), status_code=422) from exc


def site_out(site: Site) -> SiteOut:
    return SiteOut(
        site.id,
        site.name,
        site.voltage_v,
        site.policy.value,
        [CircuitIn(c.id, c.parent, c.limit_a, c.limit_w) for c in site.circuits],
        [
            EvseIn(
                e.station_id,
                e.evse_id,
                e.circuit,
                str(e.wiring),
                e.max_a,
                e.min_a,
                e.smart,
                e.fallback_a,
            )
            for e in site.evses
        ],
    )


def slot_of(station_id: str, evse_id: int, data: EvsePlacement | EvseIn) -> EvseSlot:
    return slot(
        station_id,
        evse_id,
        data.circuit,
        data.wiring,
        max_a=data.max_a,
        min_a=data.min_a,
        smart=data.smart,
        fallback_a=data.fallback_a,
    )


@get("/", summary="List the sites")
async def list_sites(ctx: Ctx) -> list[SiteOut]:
    return [site_out(s) for s in _sites(ctx).all()]


@get("/{site_id:str}", summary="A site with its circuits and EVSEs")
async def get_site(ctx: Ctx, site_id: FromPath[str]) -> SiteOut:
    with _translated():
        return site_out(_sites(ctx).get(site_id))


@put("/{site_id:str}", summary="Create or replace a site whole", opt=OPERATOR)
async def put_site(ctx: Ctx, site_id: FromPath[str], data: JSONBody[SiteIn]) -> SiteOut:
    with _translated():
        site = Site(
            _named("site id", site_id),
            tuple(Circuit(c.id, c.parent, c.limit_a, c.limit_w) for c in data.circuits),
            tuple(slot_of(e.station_id, e.evse_id, e) for e in data.evses),
            data.voltage_v,
            data.name,
            Policy(data.policy),
        )
        return site_out(await _sites(ctx).put(site))


@delete("/{site_id:str}", summary="Delete a site", opt=OPERATOR, status_code=HTTP_204_NO_CONTENT)
async def delete_site(ctx: Ctx, site_id: FromPath[str]) -> None:
    if not await _sites(ctx).delete(site_id):
        raise NotFoundException(f"no site {site_id}")


@put("/{site_id:str}/circuits/{circuit_id:str}", summary="Add or change a circuit", opt=OPERATOR)
async def put_circuit(
    ctx: Ctx, site_id: FromPath[str], circuit_id: FromPath[str], data: JSONBody[CircuitChange]
) -> SiteOut:
    with _translated():
        circuit = Circuit(_named("circuit id", circuit_id), data.parent, data.limit_a, data.limit_w)
        return site_out(await _sites(ctx).set_circuit(site_id, circuit))


@delete(
    "/{site_id:str}/circuits/{circuit_id:str}",
    summary="Remove a circuit (with nothing on it)",
    opt=OPERATOR,
    status_code=HTTP_204_NO_CONTENT,
)
async def delete_circuit(ctx: Ctx, site_id: FromPath[str], circuit_id: FromPath[str]) -> None:
    with _translated():
        if not await _sites(ctx).remove_circuit(site_id, circuit_id):
            raise NotFoundException(f"no circuit {circuit_id} on site {site_id}")


@put(
    "/{site_id:str}/evses/{station_id:str}/{evse_id:int}",
    summary="Put an EVSE on a circuit of the site",
    opt=OPERATOR,
)
async def put_evse(
    ctx: Ctx,
    site_id: FromPath[str],
    station_id: FromPath[str],
    evse_id: FromPath[int],
    data: JSONBody[EvsePlacement],
) -> SiteOut:
    with _translated():
        if not 1 <= evse_id <= 1000:
            raise SiteError("evse_id is 1 to 1000")
        _named("station id", station_id, _STATION)
        return site_out(await _sites(ctx).place(site_id, slot_of(station_id, evse_id, data)))


@delete(
    "/{site_id:str}/evses/{station_id:str}/{evse_id:int}",
    summary="Take an EVSE off the site",
    opt=OPERATOR,
    status_code=HTTP_204_NO_CONTENT,
)
async def delete_evse(
    ctx: Ctx, site_id: FromPath[str], station_id: FromPath[str], evse_id: FromPath[int]
) -> None:
    with _translated():
        if not await _sites(ctx).remove(site_id, station_id, evse_id):
            raise NotFoundException(f"no EVSE {station_id}/{evse_id} on site {site_id}")


class NeedsIn(msgspec.Struct, forbid_unknown_fields=True):
    """What a car needs, as its driver or an app tells it: the energy still wanted by a
    departure time, the current range it accepts, its priority (policy ``priority``)."""

    energy_wh: float | None = None
    departure: Time | None = None
    min_current_a: float | None = None
    max_current_a: float | None = None
    phases: Literal[1, 2, 3] | None = None
    priority: int | None = None


class NeedsOut(msgspec.Struct):
    transaction_id: int
    energy_wh: float | None
    departure: Time | None
    min_current_a: float | None
    max_current_a: float | None
    phases: int | None
    priority: int


def _needs_of(ctx: Ctx, site_id: str, station_id: str, evse_id: int) -> NeedsOut:
    balancer = _balancer(ctx)
    with _translated():
        site = _sites(ctx).get(site_id)
    if not any(e.station_id == station_id and e.evse_id == evse_id for e in site.evses):
        raise NotFoundException(f"no EVSE {station_id}/{evse_id} on site {site_id}")
    known = balancer.session_needs(station_id, evse_id)
    if known is None:
        raise NotFoundException(f"no car charging at {station_id}/{evse_id}")
    return msgspec.convert(known, NeedsOut)


@get(
    "/{site_id:str}/evses/{station_id:str}/{evse_id:int}/needs",
    summary="What the car at an EVSE needs, as the balancer plans for it",
)
async def get_needs(
    ctx: Ctx, site_id: FromPath[str], station_id: FromPath[str], evse_id: FromPath[int]
) -> NeedsOut:
    return _needs_of(ctx, site_id, station_id, evse_id)


@put(
    "/{site_id:str}/evses/{station_id:str}/{evse_id:int}/needs",
    summary="Tell what the car at an EVSE needs (energy by departure, current, priority)",
    opt=OPERATOR,
)
async def put_needs(
    ctx: Ctx,
    site_id: FromPath[str],
    station_id: FromPath[str],
    evse_id: FromPath[int],
    data: JSONBody[NeedsIn],
) -> NeedsOut:
    _needs_of(ctx, site_id, station_id, evse_id)  # 404 without the EVSE or a car on it
    amounts = (data.energy_wh, data.min_current_a, data.max_current_a)
    if any(v is not None and not 0 <= v < math.inf for v in amounts):
        raise ClientException("energy and currents are numbers, at least 0", status_code=422)
    if data.priority is not None and not -1000 <= data.priority <= 1000:
        raise ClientException("priority is -1000 to 1000", status_code=422)
    low, high = data.min_current_a, data.max_current_a
    if low is not None and high is not None and low > high:
        raise ClientException("min_current_a is above max_current_a", status_code=422)
    ctx.central.events.publish(
        events.ChargingNeeds(
            station_id=station_id,
            at=ctx.central.clock.now(),
            evse_id=evse_id,
            energy_wh=data.energy_wh,
            departure=data.departure,
            min_current_a=low,
            max_current_a=high,
            phases=data.phases,
            priority=data.priority,
            source="api",
        )
    )
    return _needs_of(ctx, site_id, station_id, evse_id)


def _plan_out(ctx: Ctx, site_id: str) -> PlanOut:
    balancer = _balancer(ctx)
    with _translated():
        site = _sites(ctx).get(site_id)
        plan = balancer.preview(site_id)
        price = balancer.price(site_id)
    return PlanOut(
        site_id,
        site.policy.value,
        [
            AllocationOut(a.evse, a.current_a, list(a.phases), a.state, a.reason)
            for a in plan.allocations
        ],
        list(plan.overloaded),
        {k: LimitOut(v.limit_a, v.limit_w) for k, v in balancer.limits(site_id).items()},
        None if price is None else price.price_per_kwh,
    )


@get("/{site_id:str}/plan", summary="What the load balancer gives each car now")
async def get_plan(ctx: Ctx, site_id: FromPath[str]) -> PlanOut:
    return _plan_out(ctx, site_id)


@put("/{site_id:str}/limits", summary="Set limits besides the circuits' own", opt=OPERATOR)
async def put_limits(ctx: Ctx, site_id: FromPath[str], data: JSONBody[LimitsIn]) -> PlanOut:
    balancer = _balancer(ctx)
    with _translated():
        site = _sites(ctx).get(site_id)
        named = set(data.circuits) | {b.circuit for b in data.blocks}
        unknown = named - {c.id for c in site.circuits}
        if unknown:
            raise SiteError(f"no circuit {', '.join(sorted(unknown))} on site {site_id}")
        if any(b.start is not None and b.start >= b.end for b in data.blocks):
            raise SiteError("a block must end after it starts")
        given = [(v.limit_a, v.limit_w) for v in data.circuits.values()]
        given += [(b.limit_a, b.limit_w) for b in data.blocks]
        if any(v is not None and not 0 <= v < math.inf for pair in given for v in pair):
            raise SiteError("limits are numbers, at least 0")
        blocks = [
            LimitBlock(k, CircuitLimit(v.limit_a, v.limit_w)) for k, v in data.circuits.items()
        ]
        blocks += [
            LimitBlock(b.circuit, CircuitLimit(b.limit_a, b.limit_w), b.start, b.end)
            for b in data.blocks
        ]
        balancer.set_timeline(site_id, "operator", blocks)
    return _plan_out(ctx, site_id)


@put(
    "/{site_id:str}/prices", summary="Set the energy prices the cost policy plans on", opt=OPERATOR
)
async def put_prices(ctx: Ctx, site_id: FromPath[str], data: JSONBody[PricesIn]) -> PlanOut:
    balancer = _balancer(ctx)
    with _translated():
        _sites(ctx).get(site_id)
        for b in data.blocks:
            if not -1e6 < b.price_per_kwh < 1e6:
                raise SiteError("price_per_kwh is a number, below a million either way")
            if b.start is not None and b.end is not None and b.start >= b.end:
                raise SiteError("a block must end after it starts")
        blocks = [PriceBlock(b.price_per_kwh, b.currency, b.start, b.end) for b in data.blocks]
        balancer.set_prices(site_id, "operator", blocks)
    return _plan_out(ctx, site_id)


handlers = [
    list_sites,
    get_site,
    put_site,
    delete_site,
    put_circuit,
    delete_circuit,
    put_evse,
    delete_evse,
    get_plan,
    put_limits,
    get_needs,
    put_needs,
    put_prices,
]
