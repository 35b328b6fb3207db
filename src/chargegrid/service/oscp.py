"""chargegrid as OSCP 2.0 Flexibility Provider (FP) of one or more Capacity Providers (CP): the
grid operator tells, per group of its grid, how much the charging there may draw over the next
hours, and chargegrid keeps its sites within it and reports what they drew.

The exchange with a CP (OSCP 2.0, the codec in :mod:`chargegrid.protocols.oscp`):

1. **Register.** The operator adds the CP with its 2.0 base URL, the token the CP gave out of
   band, and which site (or circuit of a site) each of its groups is. chargegrid makes a token
   for the CP to call it with and sends it in a Register, with chargegrid's own base URL. The CP
   may register back with a new token for chargegrid to use; it then replaces the first.
2. **Handshake.** The CP's Handshake says how often it wants a Heartbeat (at least 1 s) and
   how it wants energy counted; chargegrid answers 204, then sends a HandshakeAcknowledge with
   the request's id as X-Correlation-ID (the 204-then-callback pattern every message follows).
   A HandshakeAcknowledge chargegrid receives must name the Handshake it answers likewise.
3. **Heartbeats** at the interval asked, both ways; a CP's own tell when it stops listening.
4. **UpdateGroupCapacityForecast** (type CONSUMPTION) becomes limits over time on the group's
   circuit: a current on each phase or one phase, or a power (``W``, ``kW``, or energy per block
   as its average power), replacing the CP's earlier forecast for that group. Other forecast
   types (GENERATION, OPTIMUM, the FALLBACK ones) are acknowledged and logged, not applied. A
   forecast sent in segments (X-Segment-Index/-Count, each after the first naming the one
   before in X-Correlation-ID) is applied whole once its last segment is in.
5. **UpdateGroupMeasurements** report, every ``measurement_interval_s`` (15 minutes), the
   energy the group's charging imported: since the last report (INTERMITTENT, the default, with
   ``initial_measure_time``), or, when the CP's Handshake asks for CONTINUOUS alone, since
   chargegrid began counting (``initial_measure_time`` then says when: a restart starts over).
   With ``asset_measurements``, an UpdateAssetMeasurements follows with each EVSE of the group
   (asset id ``STATION/EVSE``, CHARGING): its energy counted the same way and the power it
   draws now. OSCP 2.0 addresses that message to a Capacity Optimizer; it is for a CP that also
   takes that role.
6. **AdjustGroupCapacityForecast**, when the operator asks (:meth:`adjust`), or when a run of
   the balancer pauses cars under a group's circuit for want of room and the CP's forecast in
   force is the limit that holds: the blocks in force with the paused cars' minimum added,
   asked only if the balancer, run on the raised limits (on a thread, from what it planned
   from: the same cars and fixed loads), would let one of them charge; at most once per
   ``adjust_interval_s`` (15 minutes) per group.
7. **GroupCapacityComplianceError** when a run finds the group's circuit over the forecast
   because of what the EVSEs the balancer cannot steer draw alone, counted as it counts them
   (an offline station's car at the profile it holds, a profile in doubt at the higher, an
   EVSE without smart charging or offline at its fallback): the blocks concerned and a message
   naming the group and the EVSEs, once for each block (the error is not repeated on every
   run; a block is forgotten once it ended).

A request already served (the same X-Request-ID, message and body from the same CP: a retry) is
answered 204 and not served again; the same X-Request-ID with another body is refused (400).

Errors: :class:`~chargegrid.protocols.oscp.OscpError` for a request that cannot be served, with
the HTTP status to answer (401 unknown token, 400 a body or group that does not fit, a group
whose site or circuit is no more among them, 404 no such endpoint); :class:`PeerError` for
what the operator asks that cannot be (422/409).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog

from chargegrid.domain import events
from chargegrid.domain.balancing import CircuitLimit, Plan
from chargegrid.domain.site import SITE_PHASES
from chargegrid.protocols import oscp
from chargegrid.protocols.oscp.errors import UNAUTHORIZED
from chargegrid.protocols.oscp.table import Role
from chargegrid.service import oscp_signals as signals
from chargegrid.service.balancing import LimitBlock, LoadBalancer
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.planning import Inputs
from chargegrid.service.ports import Clock
from chargegrid.service.sites import SiteNotFound, Sites

log = structlog.get_logger(__name__)

VERSION = "2.0"
DEFAULT_HEARTBEAT_S = 300.0
SEEN_REQUESTS = 1024  # request ids remembered per CP, to serve a retry once
MAX_SEGMENTS = 100
_INTERMITTENT = oscp.MeasurementConfiguration.INTERMITTENT
_CONTINUOUS = oscp.MeasurementConfiguration.CONTINUOUS


class PeerError(Exception):
    """A peer the operator cannot add: the message says why."""


class NotDelivered(Exception):
    """A message the operator asked for that the peer did not take (unreachable, or answered
    other than 204): the message says which."""


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
class _Segments:
    """The segments of a forecast received so far."""

    forecast_type: oscp.CapacityForecastType
    count: int
    last_request_id: str
    blocks: list[oscp.ForecastedBlock]


@dataclass
class _Live:
    """What is not stored: when each thing was last sent, energy counted since."""

    heartbeat_sent: datetime | None = None
    heartbeat_seen: datetime | None = None
    offline_mode_at: datetime | None = None
    measured_at: datetime | None = None
    counting_since: datetime | None = None
    configuration: tuple[oscp.MeasurementConfiguration, ...] = ()  # the CP's Handshake's
    energy_wh: dict[str, Decimal] = field(default_factory=dict)  # group -> since measured_at
    total_wh: dict[str, Decimal] = field(default_factory=dict)  # group -> since counting_since
    asset_wh: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (group, EVSE) ->
    asset_total_wh: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    requests: OrderedDict[tuple[str, str], bytes] = field(default_factory=OrderedDict)  # -> body
    segments: dict[str, _Segments] = field(default_factory=dict)  # group ->
    forecasts: dict[str, list[signals.Held]] = field(default_factory=dict)  # group -> in use
    asked_at: dict[str, datetime] = field(default_factory=dict)  # group -> last adjustment
    asking: set[str] = field(default_factory=set)  # groups whose adjustment is being weighed
    reported: dict[str, set[oscp.ForecastedBlock]] = field(default_factory=dict)  # group ->

    @property
    def continuous(self) -> bool:
        return _CONTINUOUS in self.configuration and _INTERMITTENT not in self.configuration


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
        self._live: dict[str, _Live] = {}
        self._tx_energy: dict[int, Decimal] = {}
        self._power_w: dict[str, float] = {}  # EVSE key -> what it draws now
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_listening: Callable[[], None] | None = None

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

    def _segment(
        self, peer: OscpPeer, message: oscp.UpdateGroupCapacityForecast, incoming: oscp.Incoming
    ) -> oscp.UpdateGroupCapacityForecast | None:
        """The whole forecast, once this is its last segment (or it came whole); 400 for a
        segment out of order."""
        if message.group_id not in peer.groups:
            raise oscp.OscpError(f"group {message.group_id!r} is not one of this peer's")
        oscp.capacity_blocks(message)  # each segment's blocks checked as it comes
        live = self.live(peer.id)
        if incoming.segment is None or incoming.segment == (1, 1):
            live.segments.pop(message.group_id, None)
            return message
        index, count = incoming.segment
        if count > MAX_SEGMENTS:
            raise oscp.OscpError(f"more than {MAX_SEGMENTS} segments")
        if index == 1:
            live.segments[message.group_id] = _Segments(
                message.forecast_type, count, incoming.request_id, list(message.forecasted_blocks)
            )
            return None
        held = live.segments.get(message.group_id)
        if held is None or held.count != count:
            raise oscp.OscpError(f"segment {index} of {count} without the ones before")
        if incoming.correlation_id != held.last_request_id:
            raise oscp.OscpError(
                f"segment {index} of {count}: X-Correlation-ID is not the previous segment's "
                "X-Request-ID"
            )
        if held.forecast_type is not message.forecast_type:
            raise oscp.OscpError(f"segment {index} of {count} is of another type")
        held.blocks.extend(message.forecasted_blocks)
        held.last_request_id = incoming.request_id
        if index < count:
            return None
        del live.segments[message.group_id]
        return oscp.UpdateGroupCapacityForecast(
            group_id=message.group_id,
            forecast_type=message.forecast_type,
            forecasted_blocks=tuple(held.blocks),
        )

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
        try:
            site_id, circuit = self._target(target)
        except PeerError as exc:  # the operator deleted or changed the site since
            raise oscp.OscpError(f"group {message.group_id!r}: {exc}") from exc
        voltage = self.sites.get(site_id).voltage_v
        held = [(b, oscp.capacity_block(b)) for b in message.forecasted_blocks]
        held.sort(key=lambda h: (h[1].start, h[1].phase or ""))
        blocks = [_limit_block(circuit, cb, voltage) for _, cb in held]
        self.live(peer.id).forecasts[message.group_id] = held
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
        for group, blocks in list(live.reported.items()):  # over: not to be reported again
            live.reported[group] = {b for b in blocks if b.end_time > now}
            if not live.reported[group]:
                del live.reported[group]
        if live.measured_at is None:
            live.measured_at = live.counting_since = now
        elif now - live.measured_at >= timedelta(seconds=self.measurement_interval_s):
            await self._measurements(peer, live, now)

    async def _measurements(self, peer: OscpPeer, live: _Live, now: datetime) -> None:
        since = live.counting_since if live.continuous else live.measured_at
        assert since is not None
        for group in sorted(peer.groups):
            counts = live.total_wh if live.continuous else live.energy_wh
            reading = _energy(counts.get(group, Decimal(0)), now, since)
            message = oscp.UpdateGroupMeasurements(group_id=group, measurements=(reading,))
            if await self._send(peer, message):
                live.energy_wh[group] = Decimal(0)
            if self.asset_measurements:
                await self._asset_measurements(peer, live, group, now, since)
        live.measured_at = now

    async def _asset_measurements(
        self, peer: OscpPeer, live: _Live, group: str, now: datetime, since: datetime
    ) -> None:
        try:
            site_id, circuit = self._target(peer.groups[group])
        except PeerError:
            return  # its site went; the group measurements said 0
        site = self.sites.get(site_id)
        under = site.under(circuit)
        counts = live.asset_total_wh if live.continuous else live.asset_wh
        assets = [
            oscp.AssetMeasurement(
                asset_id=slot.key,
                asset_category=oscp.AssetCategory.CHARGING,
                energy_measurement=_energy(counts.get((group, slot.key), Decimal(0)), now, since),
                instantaneous_measurement=oscp.InstantaneousMeasurement(
                    value=self._power_w.get(slot.key, 0.0),
                    phase=oscp.PhaseIndicator.ALL,
                    unit=oscp.InstantaneousMeasurementUnit.W,
                    measure_time=now,
                ),
            )
            for slot in sorted(site.evses, key=lambda e: e.key)
            if slot.circuit in under
        ]
        if not assets:
            return
        message = oscp.UpdateAssetMeasurements(group_id=group, measurements=tuple(assets))
        if await self._send(peer, message):
            for slot in site.evses:
                live.asset_wh.pop((group, slot.key), None)

    # --- asking for capacity, owning up to what cannot be kept --------------------------------

    async def adjust(
        self,
        peer_id: str,
        group: str,
        blocks: Sequence[oscp.ForecastedBlock],
        forecast_type: oscp.CapacityForecastType = oscp.CapacityForecastType.CONSUMPTION,
    ) -> str:
        """Ask the CP for other capacity for ``group`` (the operator's AdjustGroupCapacityForecast);
        the request id, once the CP took it. KeyError for an unknown peer or group, PeerError
        for a peer not yet registered, NotDelivered when the CP did not take it."""
        peer = self._peers[peer_id]
        if group not in peer.groups:
            raise KeyError(group)
        if peer.state == "registering":
            raise PeerError(f"OSCP peer {peer_id} has not registered yet")
        message = oscp.AdjustGroupCapacityForecast(
            group_id=group, forecast_type=forecast_type, forecasted_blocks=tuple(blocks)
        )
        request_id, status = await self._post(peer, message)
        if status != 204:
            said = "could not be reached" if status is None else f"answered {status}"
            raise NotDelivered(f"OSCP peer {peer_id} {said}")
        return request_id

    def on_plan(self, site_id: str, plan: Plan) -> None:
        """After each run of the balancer: a GroupCapacityComplianceError or an
        AdjustGroupCapacityForecast for the groups on the site that need one (see the module's
        documentation); sent in the background."""
        inputs: Inputs | None = None  # what the balancer counts, taken once, if needed
        for peer in list(self._peers.values()):
            if peer.state == "registering":
                continue
            live = self.live(peer.id)
            for group, target in sorted(peer.groups.items()):
                held = live.forecasts.get(group)
                if not held or self._split(target)[0] != site_id:
                    continue
                try:
                    _, circuit = self._target(target)
                except PeerError:
                    continue
                inputs = inputs or signals.snapshot(self.balancer, site_id)
                if not self._complain(peer, live, group, circuit, plan, held, inputs):
                    self._ask(peer, live, group, circuit, plan, held, inputs)

    def _complain(
        self,
        peer: OscpPeer,
        live: _Live,
        group: str,
        circuit: str,
        plan: Plan,
        held: list[signals.Held],
        inputs: Inputs,
    ) -> bool:
        site, now = inputs.site, inputs.moments[0].start
        load, fixed = signals.fixed_load(site, circuit, inputs.offline, inputs.moments[0].fixed)
        blocks = signals.compliance_blocks(site, circuit, plan, held, load, now)
        if not blocks:
            return False
        reported = live.reported.setdefault(group, set())
        new = [b for b in blocks if b not in reported]
        if new:
            reported.update(new)
            over = [n for n in plan.overloaded if n.startswith(f"{circuit}/")]
            text = (
                f"group {group} (site {site.id}, circuit {circuit}) cannot keep to "
                f"{len(new)} forecasted block(s): EVSEs chargegrid cannot steer (offline, "
                f"without smart charging, or holding an earlier profile) "
                f"({', '.join(fixed)}) may draw {max(load.amps):.1f} A a phase, "
                f"{load.watts:.0f} W, over {', '.join(over)}"
            )
            message = oscp.GroupCapacityComplianceError(message=text, forecasted_blocks=tuple(new))
            log.warning("OSCP group over its capacity", peer=peer.id, group=group, reason=text)
            self._spawn(self._send(peer, message))
        return True

    def _ask(
        self,
        peer: OscpPeer,
        live: _Live,
        group: str,
        circuit: str,
        plan: Plan,
        held: list[signals.Held],
        inputs: Inputs,
    ) -> None:
        site, now = inputs.site, inputs.moments[0].start
        last = live.asked_at.get(group)
        if group in live.asking or (
            last is not None and now - last < timedelta(seconds=self.adjust_interval_s)
        ):
            return
        asks = signals.adjustment(site, circuit, plan, held, now)
        if not asks:
            return
        limits = signals.relaxed(inputs.moments[0].limits, circuit, asks, site.voltage_v)
        paused = frozenset(a.evse for a in plan.allocations if a.state == "paused")
        message = oscp.AdjustGroupCapacityForecast(
            group_id=group,
            forecast_type=oscp.CapacityForecastType.CONSUMPTION,
            forecasted_blocks=tuple(fb for _, fb in asks),
        )
        live.asking.add(group)
        self._spawn(self._ask_if_it_helps(peer, live, message, inputs, limits, paused))

    async def _ask_if_it_helps(
        self,
        peer: OscpPeer,
        live: _Live,
        message: oscp.AdjustGroupCapacityForecast,
        inputs: Inputs,
        limits: dict[str, CircuitLimit],
        paused: frozenset[str],
    ) -> None:
        """Run the balancer on the raised limits (a thread: it may take a while, and this
        follows a run on the event loop); ask the CP only if a paused car would charge then."""
        group = message.group_id
        try:
            then = await asyncio.to_thread(signals.balanced_on, inputs, limits)
        except Exception:  # as a failing plan listener would be: logged, the next run tries
            log.exception("OSCP adjustment not weighed", peer=peer.id, group=group)
            return
        finally:
            live.asking.discard(group)
        if not any(a.state == "charging" and a.evse in paused for a in then.allocations):
            return  # another limit holds them back: more from this CP would not help
        live.asked_at[group] = inputs.moments[0].start
        log.info("OSCP asking for capacity", peer=peer.id, group=group, cars=len(paused))
        await self._send(peer, message)

    # --- energy, from the transactions' meter values ---------------------------------------

    def on_event(self, envelope: Envelope) -> None:
        event = envelope.event
        if not isinstance(event, events.TransactionUpdated | events.TransactionEnded):
            if isinstance(event, events.TransactionStarted):
                self._tx_energy[event.transaction_id] = event.energy_wh or Decimal(0)
            return
        key = f"{event.station_id}/{event.evse_id}"
        if isinstance(event, events.TransactionEnded):
            self._power_w.pop(key, None)
        elif event.power_w is not None:
            self._power_w[key] = float(event.power_w)
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
                    live = self.live(peer.id)
                    for counts in (live.energy_wh, live.total_wh):
                        counts[group] = counts.get(group, Decimal(0)) + delta
                    asset = (group, slot.key)
                    for assets in (live.asset_wh, live.asset_total_wh):
                        assets[asset] = assets.get(asset, Decimal(0)) + delta

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


def _energy(value: Decimal, now: datetime, since: datetime) -> oscp.EnergyMeasurement:
    """What the charging imported from ``since`` to ``now``, in Wh on all phases."""
    return oscp.EnergyMeasurement(
        value=float(value),
        phase=oscp.PhaseIndicator.ALL,
        unit=oscp.EnergyMeasurementUnit.WH,
        direction=oscp.EnergyFlowDirection.IMPORT,
        energy_type=oscp.EnergyType.FLEXIBLE,
        measure_time=now,
        initial_measure_time=since,
    )


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
