"""The :class:`~chargegrid.service.oscp.PeerStore` on SQLite or PostgreSQL: a
:class:`~.side.SideStore` (peers change at registration and handshake)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update

from chargegrid.adapters.storage import tables
from chargegrid.adapters.storage.side import SideStore, engines
from chargegrid.service.oscp import OscpPeer

_P = tables.oscp_peers


def open_peer_store(url: str) -> SqlPeerStore:
    return SqlPeerStore(*engines(url))


class SqlPeerStore(SideStore):
    what = "OSCP peer store"

    async def all(self) -> list[OscpPeer]:
        return [_to_peer(row) for row in await self._read(select(_P).order_by(_P.c.id))]

    async def add(self, peer: OscpPeer) -> None:
        await self._write(insert(_P).values(**_row(peer)))

    async def save(self, peer: OscpPeer) -> None:
        await self._write(update(_P).where(_P.c.id == peer.id).values(**_row(peer)))

    async def delete(self, peer_id: str) -> bool:
        result = await self._write(delete(_P).where(_P.c.id == peer_id))
        return bool(result.rowcount)


def _row(peer: OscpPeer) -> dict[str, Any]:
    return {
        "id": peer.id,
        "base_url": peer.base_url,
        "token_out": peer.token_out,
        "token_in_sha256": peer.token_in_sha256,
        "groups": dict(peer.groups),
        "state": peer.state,
        "heartbeat_interval_s": peer.heartbeat_interval_s,
        "updated_at": peer.updated_at,
    }


def _to_peer(row: Any) -> OscpPeer:
    return OscpPeer(
        id=row.id,
        base_url=row.base_url,
        token_out=row.token_out,
        token_in_sha256=row.token_in_sha256,
        groups=dict(row.groups),
        state=row.state,
        heartbeat_interval_s=row.heartbeat_interval_s,
        updated_at=row.updated_at,
    )
