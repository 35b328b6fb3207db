"""The :class:`FlexibilityProvider`: started and stopped with the server, the peers the operator
adds and removes, and each request a CP sends, served once (a retry is answered and not served
again). Its parts are in the mixins it is made of; the exchange they follow is in
:mod:`chargegrid.service.oscp`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Mapping

import structlog

from chargegrid.protocols import oscp
from chargegrid.protocols.oscp.errors import UNAUTHORIZED
from chargegrid.protocols.oscp.table import Role
from chargegrid.service.events import EventBus
from chargegrid.service.oscp.capacity import Capacity
from chargegrid.service.oscp.forecasts import Forecasts
from chargegrid.service.oscp.handshake import Handshakes
from chargegrid.service.oscp.measurements import Measurements
from chargegrid.service.oscp.peers import OscpPeer, PeerError, hash_token
from chargegrid.service.sites import SiteNotFound

log = structlog.get_logger(__package__)  # one logger name for the whole Flexibility Provider

SEEN_REQUESTS = 1024  # request ids remembered per CP, to serve a retry once


class FlexibilityProvider(Handshakes, Forecasts, Measurements, Capacity):
    """chargegrid as OSCP 2.0 Flexibility Provider of its peers, the Capacity Providers (the
    constructor is :class:`~chargegrid.service.oscp.base.ProviderBase`'s)."""

    async def start(self, bus: EventBus) -> None:
        self._peers = {p.id: p for p in await self.store.all()}
        self._stop_listening = bus.listen(self.on_event)
        self.balancer.on_plan(self.on_plan)
        self._spawn(self._run())
        for peer in self._peers.values():
            if peer.state == "registering":
                self._spawn(self._register(peer))

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.transport.close()
        await self.store.close()

    # --- what the operator asks ---------------------------------------------------------

    def peers(self) -> list[OscpPeer]:
        return [self._peers[k] for k in sorted(self._peers)]

    async def add_peer(
        self, peer_id: str, base_url: str, token: str, groups: Mapping[str, str]
    ) -> OscpPeer:
        """Add a CP and register at it (in the background: it may be down for now)."""
        if peer_id in self._peers:
            raise PeerError(f"an OSCP peer {peer_id} exists")
        for target in groups.values():
            self._target(target)
        mine = secrets.token_urlsafe(32)
        peer = OscpPeer(
            peer_id,
            base_url.rstrip("/"),
            token,
            hash_token(mine),
            dict(groups),
            "registering",
            None,
            self.clock.now(),
        )
        await self.store.add(peer)
        self._peers[peer_id] = peer
        self._spawn(self._register(peer, mine))
        return peer

    async def remove_peer(self, peer_id: str) -> bool:
        peer = self._peers.pop(peer_id, None)
        if peer is None:
            return False
        await self.store.delete(peer_id)
        self._live.pop(peer_id, None)
        for group, target in peer.groups.items():
            site_id, _ = self._split(target)
            with contextlib.suppress(SiteNotFound):
                self.balancer.set_timeline(site_id, f"oscp:{peer_id}:{group}", [])
        return True

    # --- what a CP sends --------------------------------------------------------------------

    async def receive(self, headers: Mapping[str, str], name: str, body: bytes) -> None:
        """Serve one request; raises OscpError with the status to answer otherwise (the
        caller answers 204 when this returns)."""
        incoming = oscp.parse_headers(headers)
        peer = self._peer_of(incoming.token.reveal())
        spec = oscp.lookup(name)
        if (Role.CAPACITY_PROVIDER, Role.FLEXIBILITY_PROVIDER) not in spec.flows:
            raise oscp.OscpError(f"a Capacity Provider does not send {spec.title} to an FP")
        message = oscp.decode(name, body)
        live = self.live(peer.id)
        seen, digest = (name, incoming.request_id), hashlib.sha256(body).digest()
        if seen in live.requests:
            if live.requests[seen] != digest:
                raise oscp.OscpError(
                    f"X-Request-ID {incoming.request_id[:64]} names another request"
                )
            log.info("OSCP retry, served before", peer=peer.id, message=spec.title)
            return
        log.info("OSCP message", peer=peer.id, message=spec.title, request_id=incoming.request_id)
        if isinstance(message, oscp.Register):
            await self._registered(peer, message)
        elif isinstance(message, oscp.Handshake):
            await self._handshake(peer, message, incoming.request_id)
        elif isinstance(message, oscp.HandshakeAcknowledge):
            if incoming.correlation_id is None:
                raise oscp.OscpError("a HandshakeAcknowledge names its Handshake: X-Correlation-ID")
            peer.state = "handshaken"
            await self._save(peer)
        elif isinstance(message, oscp.Heartbeat):
            live.heartbeat_seen = self.clock.now()
            live.offline_mode_at = message.offline_mode_at
        elif isinstance(message, oscp.UpdateGroupCapacityForecast):
            whole = self._segment(peer, message, incoming)
            if whole is not None:
                self._forecast(peer, whole)
        live.requests[seen] = digest
        while len(live.requests) > SEEN_REQUESTS:
            live.requests.popitem(last=False)

    def _peer_of(self, token: str) -> OscpPeer:
        digest = hash_token(token)
        for peer in self._peers.values():
            if hmac.compare_digest(peer.token_in_sha256, digest):
                return peer
        raise oscp.OscpError("unknown token", UNAUTHORIZED)
