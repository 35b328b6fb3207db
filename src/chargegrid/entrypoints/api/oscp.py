"""OSCP 2.0 over HTTP: the Flexibility Provider's endpoints Capacity Providers post to
(``POST /oscp/fp/2.0/{message}``, their own ``Authorization: Token``, not the REST API's bearer
tokens, and not in the REST API's document), and the REST API's ``/api/v1/oscp/peers`` where
admins add and remove Capacity Providers and ask one for other capacity for a group
(``POST /api/v1/oscp/peers/{peer}/groups/{group}/adjust``: an AdjustGroupCapacityForecast).

Every OSCP request is answered 204 when served (a reply message, if any, follows as a request of
its own); otherwise with the status the codec or the service gives (401 unknown token, 400 a
body that is not the message or names an unknown group, 404 no such endpoint) and an OSCP
``Error`` body saying why, logged without the token.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import msgspec
import structlog
from litestar import Request, Response, delete, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from chargegrid.entrypoints.api.auth import ADMIN, PUBLIC
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import ApiError, Time
from chargegrid.protocols import oscp
from chargegrid.service.oscp import FlexibilityProvider, NotDelivered, OscpPeer, PeerError

log = structlog.get_logger(__name__)

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^/\x00]+$")]


class PeerIn(msgspec.Struct, forbid_unknown_fields=True):
    """A Capacity Provider: its OSCP 2.0 base URL, the token it gave out of band, and which
    site (``site`` or ``site/circuit``) each of its group ids is."""

    id: Name
    base_url: Annotated[str, msgspec.Meta(min_length=8, max_length=512, pattern=r"^https?://")]
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=r"^[!-~]+$")]
    groups: dict[str, str]


class PeerOut(msgspec.Struct):
    id: str
    base_url: str
    groups: dict[str, str]
    state: str
    heartbeat_interval_s: float | None


def _peer_out(peer: OscpPeer) -> PeerOut:
    return PeerOut(peer.id, peer.base_url, peer.groups, peer.state, peer.heartbeat_interval_s)


def _fp(ctx: Ctx) -> FlexibilityProvider:
    if ctx.oscp is None:
        raise NotFoundException("OSCP is off on this node")
    return ctx.oscp


@get("/peers", summary="The OSCP Capacity Providers", opt=ADMIN)
async def list_peers(ctx: Ctx) -> list[PeerOut]:
    return [_peer_out(p) for p in _fp(ctx).peers()]


@post("/peers", summary="Add a Capacity Provider and register at it", opt=ADMIN, status_code=201)
async def add_peer(ctx: Ctx, data: JSONBody[PeerIn]) -> PeerOut:
    if not data.groups or any(not k or "\x00" in k + v for k, v in data.groups.items()):
        raise ClientException("groups: at least one group id, each naming a site", status_code=422)
    try:
        peer = await _fp(ctx).add_peer(data.id, data.base_url, data.token, data.groups)
    except PeerError as exc:
        status = 409 if "exists" in str(exc) else 422
        raise ClientException(str(exc), status_code=status) from exc
    return _peer_out(peer)


@delete(
    "/peers/{peer_id:str}",
    summary="Remove a Capacity Provider (its limits go)",
    opt=ADMIN,
    status_code=HTTP_204_NO_CONTENT,
)
async def delete_peer(ctx: Ctx, peer_id: FromPath[str]) -> None:
    if not await _fp(ctx).remove_peer(peer_id):
        raise NotFoundException(f"no OSCP peer {peer_id}")


class CapacityBlockIn(msgspec.Struct, forbid_unknown_fields=True):
    """Capacity asked for: ``capacity`` (at least 0) in ``unit`` on ``phase`` (``ALL``, or the
    site phase ``ONE``/``TWO``/``THREE``) from ``start`` to ``end`` (an OSCP ForecastedBlock)."""

    capacity: float
    start: Time
    end: Time
    unit: Literal["A", "W", "KW", "WH", "KWH"] = "A"
    phase: Literal["ALL", "ONE", "TWO", "THREE", "UNKNOWN"] = "ALL"


class AdjustIn(msgspec.Struct, forbid_unknown_fields=True):
    """An AdjustGroupCapacityForecast: one block or more, of ``type`` CONSUMPTION unless
    given."""

    blocks: list[CapacityBlockIn]
    forecast_type: Literal[
        "CONSUMPTION", "GENERATION", "FALLBACK_CONSUMPTION", "FALLBACK_GENERATION", "OPTIMUM"
    ] = msgspec.field(name="type", default="CONSUMPTION")


class AdjustOut(msgspec.Struct):
    """The X-Request-ID of the AdjustGroupCapacityForecast the Capacity Provider took."""

    request_id: str


MAX_BLOCKS = 96  # a day in quarter hours


@post(
    "/peers/{peer_id:str}/groups/{group_id:str}/adjust",
    summary="Ask a Capacity Provider for other capacity for a group",
    opt=ADMIN,
    status_code=200,
    responses={
        409: ResponseSpec(
            ApiError,
            description="The peer has not registered yet, or did not take the request "
            "(unreachable, or answered other than 204)",
            generate_examples=False,
        ),
        422: ResponseSpec(
            ApiError,
            description="No blocks or too many, a capacity below 0, or a block that does not "
            "end after it starts",
            generate_examples=False,
        ),
    },
)
async def adjust(
    ctx: Ctx, peer_id: FromPath[str], group_id: FromPath[str], data: JSONBody[AdjustIn]
) -> AdjustOut:
    if not 1 <= len(data.blocks) <= MAX_BLOCKS:
        raise ClientException(f"blocks: 1 to {MAX_BLOCKS}", status_code=422)
    for block in data.blocks:
        if not 0 <= block.capacity < math.inf:
            raise ClientException("capacity: a number, at least 0", status_code=422)
        if block.end <= block.start:
            raise ClientException("a block must end after it starts", status_code=422)
    blocks = [
        oscp.ForecastedBlock(
            capacity=b.capacity,
            phase=oscp.PhaseIndicator(b.phase),
            unit=oscp.ForecastedBlockUnit(b.unit),
            start_time=b.start,
            end_time=b.end,
        )
        for b in data.blocks
    ]
    kind = oscp.CapacityForecastType(data.forecast_type)
    try:
        request_id = await _fp(ctx).adjust(peer_id, group_id, blocks, kind)
    except KeyError as exc:
        raise NotFoundException(f"no OSCP peer {peer_id} with a group {group_id}") from exc
    except (PeerError, NotDelivered) as exc:
        raise ClientException(str(exc), status_code=409) from exc
    return AdjustOut(request_id)


handlers = [list_peers, add_peer, delete_peer, adjust]


@post(
    "/oscp/fp/2.0/{message:str}",
    opt={PUBLIC: True},
    include_in_schema=False,
    status_code=200,  # the Response says which
)
async def receive(
    ctx: Ctx, request: Request[Any, Any, Any], message: FromPath[str]
) -> Response[Any]:
    """An OSCP message from a Capacity Provider."""
    if ctx.oscp is None:
        return _error(oscp.OscpError("OSCP is off on this node", 404))
    body = await request.body()
    try:
        await ctx.oscp.receive(request.headers, message, body)
    except oscp.OscpError as exc:
        log.warning(
            "OSCP request refused", message=message[:64], status=exc.status, reason=str(exc)
        )
        return _error(exc)
    return Response(None, status_code=HTTP_204_NO_CONTENT)


def _error(exc: oscp.OscpError) -> Response[Any]:
    body = oscp.encode(oscp.Error(message=str(exc)))
    return Response(body, status_code=exc.status, media_type="application/json")
