"""OSCP 2.0 over HTTP: the Flexibility Provider's endpoints Capacity Providers post to
(``POST /oscp/fp/2.0/{message}``, their own ``Authorization: Token``, not the REST API's bearer
tokens, and not in the REST API's document), and the REST API's ``/api/v1/oscp/peers`` where
admins add and remove Capacity Providers.

Every OSCP request is answered 204 when served (a reply message, if any, follows as a request of
its own); otherwise with the status the codec or the service gives (401 unknown token, 400 a
body that is not the message or names an unknown group, 404 no such endpoint) and an OSCP
``Error`` body saying why, logged without the token.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, Response, delete, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from chargegrid.entrypoints.api.auth import ADMIN, PUBLIC
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.protocols import oscp
from chargegrid.service.oscp import FlexibilityProvider, OscpPeer, PeerError

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


handlers = [list_peers, add_peer, delete_peer]


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
