"""Register and Handshake with a CP, both ways (steps 1 and 2 of the exchange in
:mod:`chargegrid.service.oscp`): chargegrid's Register, retried while the CP cannot be reached;
the CP's Register, whose token then replaces the first; the CP's Handshake, answered by a
HandshakeAcknowledge that names it."""

from __future__ import annotations

import asyncio
import secrets

from chargegrid.protocols import oscp
from chargegrid.service.oscp.base import ProviderBase
from chargegrid.service.oscp.peers import OscpPeer, hash_token

VERSION = "2.0"
DEFAULT_HEARTBEAT_S = 300.0


class Handshakes(ProviderBase):
    """The registration and handshake part of :class:`FlexibilityProvider`."""

    async def _registered(self, peer: OscpPeer, message: oscp.Register) -> None:
        urls = [v.base_url for v in message.version_url if v.version == VERSION]
        if not urls:
            raise oscp.OscpError(f"no version {VERSION} in version_url")
        peer.base_url = urls[0].rstrip("/")
        peer.token_out = message.token.reveal()
        peer.state = "registered" if peer.state == "registering" else peer.state
        await self._save(peer)

    async def _handshake(self, peer: OscpPeer, message: oscp.Handshake, request_id: str) -> None:
        asked = message.required_behaviour
        interval = None
        if not isinstance(asked, oscp.UnsetType):
            if not isinstance(asked.heartbeat_interval, oscp.UnsetType):
                interval = float(asked.heartbeat_interval)
                if interval < 1:  # OSCP 2.0 RequiredBehaviour: "1 or higher" when given
                    raise oscp.OscpError("heartbeat_interval is below 1 second")
            self.live(peer.id).configuration = asked.measurement_configuration
        peer.heartbeat_interval_s = interval
        peer.state = "handshaken"
        await self._save(peer)
        answer = oscp.HandshakeAcknowledge(
            required_behaviour=oscp.RequiredBehaviour(
                heartbeat_interval=DEFAULT_HEARTBEAT_S, measurement_configuration=()
            )
        )
        self._spawn(self._send(peer, answer, correlation_id=request_id))

    async def _register(self, peer: OscpPeer, mine: str | None = None) -> None:
        if mine is None:  # after a restart the token is only known hashed: a new one
            mine = secrets.token_urlsafe(32)
            peer.token_in_sha256 = hash_token(mine)
            await self._save(peer)
        message = oscp.Register(
            token=oscp.Token(mine),
            version_url=(oscp.VersionUrl(version=VERSION, base_url=self.own_url),),
        )
        for attempt in range(10):
            if await self._send(peer, message):
                if peer.state == "registering":
                    peer.state = "registered"
                    await self._save(peer)
                return
            await asyncio.sleep(min(60.0, 2.0**attempt))
