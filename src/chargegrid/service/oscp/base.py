"""What every part of the :class:`~chargegrid.service.oscp.FlexibilityProvider` shares: its
constructor and state (the peers, what is kept of each in memory, the background tasks), the site
and circuit a group is, and the HTTP client that posts a message to a CP (delivered when the CP
answered 204)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import structlog

from chargegrid.protocols import oscp
from chargegrid.service.balancing import LoadBalancer
from chargegrid.service.oscp.peers import Live, OscpPeer, PeerError, PeerStore, Transport
from chargegrid.service.ports import Clock
from chargegrid.service.sites import SiteNotFound, Sites

log = structlog.get_logger(__package__)  # one logger name for the whole Flexibility Provider


class ProviderBase:
    """The state and helpers the mixins of :class:`FlexibilityProvider` build on."""

    def __init__(
        self,
        store: PeerStore,
        balancer: LoadBalancer,
        sites: Sites,
        transport: Transport,
        clock: Clock,
        own_url: str,
        *,
        measurement_interval_s: float = 900.0,
        adjust_interval_s: float = 900.0,
        asset_measurements: bool = False,
        tick_s: float = 1.0,
    ) -> None:
        self.store = store
        self.balancer = balancer
        self.sites = sites
        self.transport = transport
        self.clock = clock
        self.own_url = own_url.rstrip("/")
        self.measurement_interval_s = measurement_interval_s
        self.adjust_interval_s = adjust_interval_s
        self.asset_measurements = asset_measurements
        self.tick_s = tick_s
        self._peers: dict[str, OscpPeer] = {}
        self._live: dict[str, Live] = {}
        self._tx_energy: dict[int, Decimal] = {}
        self._power_w: dict[str, float] = {}  # EVSE key -> what it draws now
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_listening: Callable[[], None] | None = None

    def live(self, peer_id: str) -> Live:
        return self._live.setdefault(peer_id, Live())

    # --- the HTTP client ----------------------------------------------------------------------

    async def _send(
        self, peer: OscpPeer, message: oscp.Message, correlation_id: str | None = None
    ) -> bool:
        _, status = await self._post(peer, message, correlation_id)
        return status == 204

    async def _post(
        self, peer: OscpPeer, message: oscp.Message, correlation_id: str | None = None
    ) -> tuple[str, int | None]:
        """The request id and the peer's HTTP status (None: not reached)."""
        headers = oscp.request_headers(oscp.Token(peer.token_out), correlation_id=correlation_id)
        request_id = headers["X-Request-ID"]
        url = oscp.endpoint_url(peer.base_url, message)
        name = oscp.spec_of(message).title
        try:
            status = await self.transport.post(url, headers, oscp.encode(message))
        except OSError as exc:
            log.warning("OSCP peer unreachable", peer=peer.id, message=name, error=str(exc))
            return request_id, None
        if status != 204:
            log.warning("OSCP peer refused", peer=peer.id, message=name, status=status)
        else:
            log.info("OSCP message sent", peer=peer.id, message=name, request_id=request_id)
        return request_id, status

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _split(target: str) -> tuple[str, str | None]:
        site_id, _, circuit = target.partition("/")
        return site_id, circuit or None

    def _target(self, target: str) -> tuple[str, str]:
        """The site and circuit a group is: the site's grid connection unless named."""
        site_id, circuit = self._split(target)
        try:
            site = self.sites.get(site_id)
        except SiteNotFound as exc:
            raise PeerError(f"a group's site {site_id} does not exist") from exc
        if circuit is None:
            return site_id, site.root.id
        if circuit not in {c.id for c in site.circuits}:
            raise PeerError(f"site {site_id} has no circuit {circuit}")
        return site_id, circuit

    async def _save(self, peer: OscpPeer) -> None:
        peer.updated_at = self.clock.now()
        await self.store.save(peer)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
