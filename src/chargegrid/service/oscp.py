"""chargegrid as OSCP 2.0 Flexibility Provider (FP) of one or more Capacity Providers (CP): the
grid operator tells, per group of its grid, how much the charging there may draw over the next
hours, and chargegrid keeps its sites within it and reports what they drew.

The exchange with a CP (OSCP 2.0, the codec in :mod:`chargegrid.protocols.oscp`):

1. **Register.** The operator adds the CP with its 2.0 base URL, the token the CP gave out of
   band, and which site (or circuit of a site) each of its groups is. chargegrid makes a token
   for the CP to call it with and sends it in a Register, with chargegrid's own base URL. The CP
   may register back with a new token for chargegrid to use; it then replaces the first.
2. **Handshake.** The CP's Handshake says how often it wants a Heartbeat; chargegrid answers
   204, then sends a HandshakeAcknowledge with the request's id as X-Correlation-ID (the
   204-then-callback pattern every message follows).
3. **Heartbeats** at the interval asked, both ways; a CP's own tell when it stops listening.
4. **UpdateGroupCapacityForecast** (type CONSUMPTION) becomes limits over time on the group's
   circuit: a current on each phase or one phase, or a power (``W``, ``kW``, or energy per block
   as its average power), replacing the CP's earlier forecast for that group. Other forecast
   types (GENERATION, OPTIMUM, the FALLBACK ones) are acknowledged and logged, not applied.
5. **UpdateGroupMeasurements** report, every ``measurement_interval_s`` (15 minutes), the
   energy the group's charging imported since the last report.

Errors: :class:`~chargegrid.protocols.oscp.OscpError` for a request that cannot be served, with
the HTTP status to answer (401 unknown token, 400 a body or group that does not fit, 404 no such
endpoint); :class:`PeerError` for what the operator asks that cannot be (422/409).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog

from chargegrid.domain import events
from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import SITE_PHASES
from chargegrid.protocols import oscp
from chargegrid.protocols.oscp.errors import UNAUTHORIZED
from chargegrid.protocols.oscp.table import Role
from chargegrid.service.balancing import LimitBlock, LoadBalancer
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.ports import Clock
from chargegrid.service.sites import SiteNotFound, Sites

log = structlog.get_logger(__name__)

VERSION = "2.0"
DEFAULT_HEARTBEAT_S = 300.0


class PeerError(Exception):
    """A peer the operator cannot add: the message says why."""


@dataclass
class OscpPeer:
    id: str
    base_url: str  # the CP's 2.0 base URL
    token_out: str = field(repr=False)  # what chargegrid presents to the CP: a secret
    token_in_sha256: str  # what the CP presents to chargegrid, hashed
    groups: dict[str, str]  # group id -> "site" or "site/circuit"
    state: str  # "registering", "registered", "handshaken"
    heartbeat_interval_s: float | None
    updated_at: datetime


class PeerStore(Protocol):
    async def all(self) -> list[OscpPeer]: ...

    async def add(self, peer: OscpPeer) -> None: ...

    async def save(self, peer: OscpPeer) -> None: ...

    async def delete(self, peer_id: str) -> bool: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        """The HTTP status the peer answered; raises OSError when it cannot be reached."""
        ...

    async def close(self) -> None: ...


@dataclass
class _Live:
    """What is not stored: when each thing was last sent, energy counted since."""

    heartbeat_sent: datetime | None = None
    heartbeat_seen: datetime | None = None
    offline_mode_at: datetime | None = None
    measured_at: datetime | None = None
    energy_wh: dict[str, Decimal] = field(default_factory=dict)  # group -> since measured_at


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class FlexibilityProvider:
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
        tick_s: float = 1.0,
    ) -> None:
        self.store = store
        self.balancer = balancer
        self.sites = sites
        self.transport = transport
        self.clock = clock
        self.own_url = own_url.rstrip("/")
        self.measurement_interval_s = measurement_interval_s
        self.tick_s = tick_s
        self._peers: dict[str, OscpPeer] = {}
        self._live: dict[str, _Live] = {}
        self._tx_energy: dict[int, Decimal] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_listening: Callable[[], None] | None = None

    async def start(self, bus: EventBus) -> None:
        self._peers = {p.id: p for p in await self.store.all()}
        self._stop_listening = bus.listen(self.on_event)
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

    def live(self, peer_id: str) -> _Live:
        return self._live.setdefault(peer_id, _Live())

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
            _hash(mine),
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
        log.info("OSCP message", peer=peer.id, message=spec.title, request_id=incoming.request_id)
        if isinstance(message, oscp.Register):
            await self._registered(peer, message)
        elif isinstance(message, oscp.Handshake):
            await self._handshake(peer, message, incoming.request_id)
        elif isinstance(message, oscp.HandshakeAcknowledge):
            peer.state = "handshaken"
            await self._save(peer)
        elif isinstance(message, oscp.Heartbeat):
            live = self.live(peer.id)
            live.heartbeat_seen = self.clock.now()
            live.offline_mode_at = message.offline_mode_at
        elif isinstance(message, oscp.UpdateGroupCapacityForecast):
            self._forecast(peer, message)

    def _peer_of(self, token: str) -> OscpPeer:
        digest = _hash(token)
        for peer in self._peers.values():
            if hmac.compare_digest(peer.token_in_sha256, digest):
                return peer
        raise oscp.OscpError("unknown token", UNAUTHORIZED)

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
        if not isinstance(asked, oscp.UnsetType) and not isinstance(
            asked.heartbeat_interval, oscp.UnsetType
        ):
            interval = float(asked.heartbeat_interval)
        peer.heartbeat_interval_s = interval
        peer.state = "handshaken"
        await self._save(peer)
        answer = oscp.HandshakeAcknowledge(
            required_behaviour=oscp.RequiredBehaviour(
                heartbeat_interval=DEFAULT_HEARTBEAT_S, measurement_configuration=()
            )
        )
        self._spawn(self._send(peer, answer, correlation_id=request_id))

    def _forecast(self, peer: OscpPeer, message: oscp.UpdateGroupCapacityForecast) -> None:
        target = peer.groups.get(message.group_id)
        if target is None:
            raise oscp.OscpError(f"group {message.group_id!r} is not one of this peer's")
        if message.forecast_type is not oscp.CapacityForecastType.CONSUMPTION:
            log.info(
                "OSCP forecast not applied",
                peer=peer.id,
                group=message.group_id,
                type=message.forecast_type.value,
            )
            return
        site_id, circuit = self._target(target)
        voltage = self.sites.get(site_id).voltage_v
        blocks = [_limit_block(circuit, b, voltage) for b in oscp.capacity_blocks(message)]
        self.balancer.set_timeline(site_id, f"oscp:{peer.id}:{message.group_id}", blocks)
        log.info("OSCP forecast applied", peer=peer.id, group=message.group_id, blocks=len(blocks))

    # --- what chargegrid sends ------------------------------------------------------------

    async def _register(self, peer: OscpPeer, mine: str | None = None) -> None:
        if mine is None:  # after a restart the token is only known hashed: a new one
            mine = secrets.token_urlsafe(32)
            peer.token_in_sha256 = _hash(mine)
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

    async def _send(
        self, peer: OscpPeer, message: oscp.Message, correlation_id: str | None = None
    ) -> bool:
        headers = oscp.request_headers(oscp.Token(peer.token_out), correlation_id=correlation_id)
        url = oscp.endpoint_url(peer.base_url, message)
        name = oscp.spec_of(message).title
        try:
            status = await self.transport.post(url, headers, oscp.encode(message))
        except OSError as exc:
            log.warning("OSCP peer unreachable", peer=peer.id, message=name, error=str(exc))
            return False
        if status != 204:
            log.warning("OSCP peer refused", peer=peer.id, message=name, status=status)
            return False
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            now = self.clock.now()
            for peer in list(self._peers.values()):
                if peer.state == "registering":
                    continue
                try:
                    await self._due(peer, now)
                except Exception:
                    log.exception("OSCP peer tick failed", peer=peer.id)

    async def _due(self, peer: OscpPeer, now: datetime) -> None:
        live = self.live(peer.id)
        interval = peer.heartbeat_interval_s
        if interval and (
            live.heartbeat_sent is None or now - live.heartbeat_sent >= timedelta(seconds=interval)
        ):
            live.heartbeat_sent = now
            beat = oscp.Heartbeat(offline_mode_at=now + timedelta(seconds=2 * interval))
            await self._send(peer, beat)
        if live.measured_at is None:
            live.measured_at = now
        elif now - live.measured_at >= timedelta(seconds=self.measurement_interval_s):
            await self._measurements(peer, live, now)

    async def _measurements(self, peer: OscpPeer, live: _Live, now: datetime) -> None:
        since = live.measured_at
        assert since is not None
        for group in sorted(peer.groups):
            energy = live.energy_wh.get(group, Decimal(0))
            reading = oscp.EnergyMeasurement(
                value=float(energy),
                phase=oscp.PhaseIndicator.ALL,
                unit=oscp.EnergyMeasurementUnit.WH,
                direction=oscp.EnergyFlowDirection.IMPORT,
                energy_type=oscp.EnergyType.FLEXIBLE,
                measure_time=now,
                initial_measure_time=since,
            )
            message = oscp.UpdateGroupMeasurements(group_id=group, measurements=(reading,))
            if await self._send(peer, message):
                live.energy_wh[group] = Decimal(0)
        live.measured_at = now

    # --- energy, from the transactions' meter values ---------------------------------------

    def on_event(self, envelope: Envelope) -> None:
        event = envelope.event
        if not isinstance(event, events.TransactionUpdated | events.TransactionEnded):
            if isinstance(event, events.TransactionStarted):
                self._tx_energy[event.transaction_id] = event.energy_wh or Decimal(0)
            return
        if event.energy_wh is None:
            return
        before = self._tx_energy.get(event.transaction_id, Decimal(0))
        delta = event.energy_wh - before
        if isinstance(event, events.TransactionEnded):
            self._tx_energy.pop(event.transaction_id, None)
        else:
            self._tx_energy[event.transaction_id] = event.energy_wh
        if delta <= 0:
            return
        found = self.sites.slot(event.station_id, event.evse_id)
        if found is None:
            return
        site, slot = found
        for peer in self._peers.values():
            for group, target in peer.groups.items():
                site_id, circuit = self._split(target)
                if site_id == site.id and (circuit is None or circuit in site.path(slot.circuit)):
                    energy = self.live(peer.id).energy_wh
                    energy[group] = energy.get(group, Decimal(0)) + delta

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


def _limit_block(circuit: str, block: oscp.CapacityBlock, voltage: float) -> LimitBlock:
    """A forecast block as a limit on the circuit: a current on each phase (no phase) or on its
    phase; a power on the phases together, or (one phase) as the current at the site's
    voltage."""
    if block.unit == "A":
        if block.phase is None:
            limit = CircuitLimit(limit_a=block.limit)
        else:
            phases: list[float | None] = [None, None, None]
            phases[SITE_PHASES.index(block.phase)] = block.limit
            limit = CircuitLimit(phase_a=(phases[0], phases[1], phases[2]))
    elif block.phase is None:
        limit = CircuitLimit(limit_w=block.limit)
    else:
        phases = [None, None, None]
        phases[SITE_PHASES.index(block.phase)] = block.limit / voltage
        limit = CircuitLimit(phase_a=(phases[0], phases[1], phases[2]))
    return LimitBlock(circuit, limit, block.start, block.end)
