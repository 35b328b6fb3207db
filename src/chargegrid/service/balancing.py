"""Load balancing applied: the balancer (:mod:`chargegrid.domain.balancing`) run for a site
whenever something it depends on changes, and its currents sent to the stations as charging
profiles.

What triggers a run of a site: a transaction starting or ending on one of its EVSEs, a car's
draw changing enough to matter (by a whole ampere or more, or falling clearly below what it was
offered), a station of the site connecting or going offline, the site being edited, or a limit
set on it (by the operator, or later by the grid operator through OSCP or OpenADR). Triggers are
gathered for ``delay_s`` (0.2 s) so a burst of them costs one run.

What is sent, only when a car's current changed (by 0.1 A or more) since it was last accepted:

* OCPP 1.6: SetChargingProfile (3.13, 5.16) with a TxProfile for the transaction, current in A;
* OCPP 2.0.1: SetChargingProfile (K01) with a TxProfile for the transaction.

A paused car gets a limit of 0 A. When a station of a site boots, each of its EVSEs on the site
gets a TxDefaultProfile at its fallback current, so a car that plugs in, and a station that
loses its connection, stay within what the balancer counted for it.

A car's draw is known from the power its meter values report. Without the number of phases it
draws on, the current per phase is taken as the power over one phase's voltage: never less
than the truth, so a car is only capped when it surely draws less than it was offered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from chargegrid.domain import events
from chargegrid.domain.balancing import Allocation, CircuitLimit, Demand, Plan, balance
from chargegrid.domain.site import EvseSlot, Site
from chargegrid.service.commands import CommandError, Commands
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.ports import Clock, Store
from chargegrid.service.sites import SiteNotFound, Sites

log = structlog.get_logger(__name__)

TX_PROFILE_ID = 2000  # + EVSE id: the same id each time, so a new profile replaces the last
DEFAULT_PROFILE_ID = 1000
REFRESH_S = 5.0
HORIZON = timedelta(hours=24)  # how far ahead cars' schedules reach
MAX_PERIODS = 96  # moments of change within the horizon (a forecast in quarter hours)
_CHANGE_A = 0.1
_DRAW_CHANGE_A = 1.0


@dataclass(frozen=True, slots=True)
class LimitBlock:
    """A limit on a circuit from ``start`` (None: already) to ``end`` (None: until changed)."""

    circuit: str
    limit: CircuitLimit
    start: datetime | None = None
    end: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (
            self.end is None or moment < self.end
        )


@dataclass(frozen=True, slots=True)
class PriceBlock:
    """An energy price from ``start`` (None: already) to ``end`` (None: until changed), from a
    grid operator's price signal or a tariff: what the cost-aware policy plans against."""

    price_per_kwh: float
    currency: str = ""
    start: datetime | None = None
    end: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (
            self.end is None or moment < self.end
        )


@dataclass(slots=True)
class _Session:
    transaction_id: int
    station_tx_id: str
    started_at: datetime
    power_w: float | None = None


class LoadBalancer:
    def __init__(
        self,
        sites: Sites,
        commands: Commands,
        store: Store,
        connected: Callable[[str], str | None],
        clock: Clock,
        *,
        delay_s: float = 0.2,
        headroom_a: float = 2.0,
    ) -> None:
        self.sites = sites
        self.commands = commands
        self.store = store
        self.connected = connected
        self.clock = clock
        self.delay_s = delay_s
        self.headroom_a = headroom_a
        self.plans: dict[str, Plan] = {}
        self._sessions: dict[str, _Session] = {}  # EVSE key ->
        self._offered: dict[str, float] = {}  # EVSE key -> current now a station accepted
        self._offered_periods: dict[str, list[tuple[int, float]]] = {}  # ... its schedule
        self._blocks: dict[str, dict[str, list[LimitBlock]]] = {}  # site -> source ->
        self._prices: dict[str, dict[str, list[PriceBlock]]] = {}  # site -> source ->
        self._wakers: dict[str, asyncio.TimerHandle] = {}
        self._pending: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_listening: Callable[[], None] | None = None
        self._plan_listeners: list[Callable[[str, Plan], None]] = []

    async def start(self, bus: EventBus) -> None:
        for site in self.sites.all():
            for station_id in {e.station_id for e in site.evses}:
                for tx in await self.store.active_transactions(station_id):
                    key = f"{tx.station_id}/{tx.evse_id}"
                    self._sessions[key] = _Session(tx.id, tx.station_tx_id, tx.started_at)
        self._stop_listening = bus.listen(self.on_event)
        self.sites.listen(self.schedule)
        for site in self.sites.all():
            self.schedule(site.id)
        self._spawn(self._follow_edits())

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
        for handle in self._wakers.values():
            handle.cancel()
        for task in [self._flush, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in [self._flush, *self._tasks] if t is not None), return_exceptions=True
        )

    def on_plan(self, listener: Callable[[str, Plan], None]) -> None:
        """Call ``listener(site_id, plan)`` after each run (the OSCP and OpenADR peers learn
        from it whether the site keeps within what the grid operator allows)."""
        self._plan_listeners.append(listener)

    # --- limits over time ----------------------------------------------------------------

    def limits(self, site_id: str, at: datetime | None = None) -> dict[str, CircuitLimit]:
        """The limits in force at ``at`` (now) besides the circuits' own, per circuit."""
        moment = at or self.clock.now()
        out: dict[str, CircuitLimit] = {}
        for blocks in self._blocks.get(site_id, {}).values():
            for block in blocks:
                if block.covers(moment):
                    held = out.get(block.circuit)
                    out[block.circuit] = block.limit if held is None else held & block.limit
        return out

    def set_limits(
        self, site_id: str, limits: Mapping[str, CircuitLimit], source: str = "operator"
    ) -> None:
        """Limits in force from now on, until changed again (``source``'s earlier ones go)."""
        self.set_timeline(site_id, source, [LimitBlock(c, lim) for c, lim in limits.items()])

    def set_timeline(self, site_id: str, source: str, blocks: Sequence[LimitBlock]) -> None:
        """Limits over time from ``source`` (an operator, a grid operator's forecast or event),
        replacing what that source set before. The lowest in force at each moment wins."""
        self.sites.get(site_id)
        self._blocks.setdefault(site_id, {})[source] = list(blocks)
        self.schedule(site_id)

    def set_prices(self, site_id: str, source: str, blocks: Sequence[PriceBlock]) -> None:
        """Energy prices over time from ``source`` (a price signal, a tariff), replacing what
        that source set before. Where sources overlap, the latest set wins."""
        self.sites.get(site_id)
        prices = self._prices.setdefault(site_id, {})
        prices.pop(source, None)
        prices[source] = list(blocks)
        self.schedule(site_id)

    def price(self, site_id: str, at: datetime | None = None) -> PriceBlock | None:
        """The energy price in force at ``at`` (now), if any source set one."""
        moment = at or self.clock.now()
        found = None
        for blocks in self._prices.get(site_id, {}).values():
            for block in blocks:
                if block.covers(moment):
                    found = block
        return found

    def site_power_w(self, site_id: str, circuit: str | None = None) -> float:
        """What the cars of the site (under ``circuit``, if given) draw now, from their meter
        values: the telemetry a grid operator is told."""
        site = self.sites.get(site_id)
        under = None if circuit is None else site.under(circuit)
        total = 0.0
        for slot in site.evses:
            if under is not None and slot.circuit not in under:
                continue
            session = self._sessions.get(slot.key)
            if session is not None and session.power_w is not None:
                total += session.power_w
        return total

    def _intervals(
        self, site_id: str, now: datetime
    ) -> list[tuple[datetime, dict[str, CircuitLimit]]]:
        """From now to the horizon, the moments the limits change and the limits from each."""
        horizon = now + HORIZON
        moments = {now}
        for blocks in self._blocks.get(site_id, {}).values():
            for block in blocks:
                for edge in (block.start, block.end):
                    if edge is not None and now < edge < horizon:
                        moments.add(edge)
        ordered = sorted(moments)[:MAX_PERIODS]
        return [(moment, self.limits(site_id, moment)) for moment in ordered]

    # --- plans ------------------------------------------------------------------------------

    def demands(self, site: Site) -> list[Demand]:
        out = []
        for slot in site.evses:
            session = self._sessions.get(slot.key)
            if session is None:
                continue
            measured = None
            if session.power_w is not None:
                measured = session.power_w / site.voltage_v  # as if on one phase: never less
            out.append(
                Demand(
                    slot.key,
                    measured_a=measured,
                    offered_a=self._offered.get(slot.key),
                    since=session.started_at,
                )
            )
        return out

    def preview(self, site_id: str) -> Plan:
        """What the balancer gives each car of the site now, sending nothing."""
        now = self.clock.now()
        return _balance_each(self._inputs(site_id, [(now, self.limits(site_id, now))]))[0][1]

    def _inputs(
        self, site_id: str, intervals: list[tuple[datetime, dict[str, CircuitLimit]]]
    ) -> tuple[Site, list[Demand], frozenset[str], float, list[tuple[datetime, Any]]]:
        """A snapshot of what the balancer needs, taken on the event loop: the balancing
        itself may then run on a thread while events change the live state."""
        site = self.sites.get(site_id)
        offline = frozenset(e.key for e in site.evses if self.connected(e.station_id) is None)
        return site, self.demands(site), offline, self.headroom_a, intervals

    async def rebalance(self, site_id: str) -> Plan:
        """Run the balancer for the site, now and at each moment its limits change within the
        horizon, and send each car whose schedule changed its new one."""
        site = self.sites.get(site_id)
        now = self.clock.now()
        inputs = self._inputs(site_id, self._intervals(site_id, now))
        plans = await asyncio.to_thread(_balance_each, inputs)
        plan = plans[0][1]
        self.plans[site_id] = plan
        slots = {e.key: e for e in site.evses}
        sends = []
        for allocation in plan.allocations:
            if allocation.state == "fixed":
                continue
            periods = _periods(allocation.evse, plans, now)
            if not _same(periods, self._offered_periods.get(allocation.evse)):
                sends.append(self._apply(slots[allocation.evse], allocation, periods, now))
        await asyncio.gather(*sends)
        if plan.overloaded:
            log.warning("site over its limits", site=site_id, limits=list(plan.overloaded))
        for listener in self._plan_listeners:
            try:
                listener(site_id, plan)
            except Exception:
                log.exception("a plan listener failed", site=site_id)
        self._wake_at(site_id, [start for start, _ in plans[1:]])
        return plan

    def _wake_at(self, site_id: str, moments: list[datetime]) -> None:
        """Run again at the next moment the limits change (the cars' schedules already hold
        it; the run renews the horizon and what the cars draw), or within the hour."""
        handle = self._wakers.pop(site_id, None)
        if handle is not None:
            handle.cancel()
        now = self.clock.now()
        delay = min([(m - now).total_seconds() for m in moments] + [3600.0])
        loop = asyncio.get_running_loop()
        self._wakers[site_id] = loop.call_later(max(delay, 1.0), self.schedule, site_id)

    # --- triggers ---------------------------------------------------------------------------

    def on_event(self, envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(event, events.TransactionStarted):
            key = f"{event.station_id}/{event.evse_id}"
            self._sessions[key] = _Session(
                event.transaction_id, event.station_tx_id, event.started_at
            )
            self._offered.pop(key, None)
            self._offered_periods.pop(key, None)
            self._touch(event.station_id, event.evse_id)
        elif isinstance(event, events.TransactionUpdated):
            key = f"{event.station_id}/{event.evse_id}"
            session = self._sessions.get(key)
            if session is None or event.power_w is None:
                return
            before = session.power_w
            session.power_w = float(event.power_w)
            if self._draw_matters(key, before, session.power_w):
                self._touch(event.station_id, event.evse_id)
        elif isinstance(event, events.TransactionEnded):
            key = f"{event.station_id}/{event.evse_id}"
            self._sessions.pop(key, None)
            self._offered.pop(key, None)
            self._offered_periods.pop(key, None)
            self._touch(event.station_id, event.evse_id)
        elif isinstance(event, events.StationOffline | events.StationOnline):
            for site in self.sites.of_station(event.station_id):
                self.schedule(site.id)
        elif isinstance(event, events.StationBooted) and event.registration == "Accepted":
            for site in self.sites.of_station(event.station_id):
                self.schedule(site.id)
            self._spawn(self._send_defaults(event.station_id))

    def schedule(self, site_id: str) -> None:
        self._pending.add(site_id)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._run_pending())

    def _touch(self, station_id: str, evse_id: int) -> None:
        found = self.sites.slot(station_id, evse_id)
        if found is not None:
            self.schedule(found[0].id)

    def _draw_matters(self, key: str, before: float | None, now: float) -> bool:
        site_slot = key.rsplit("/", 1)
        found = self.sites.slot(site_slot[0], int(site_slot[1]))
        if found is None:
            return False
        voltage = found[0].voltage_v
        if before is None or abs(now - before) / voltage >= _DRAW_CHANGE_A:
            return True
        offered = self._offered.get(key)
        return offered is not None and now / voltage < offered - self.headroom_a

    async def _run_pending(self) -> None:
        await asyncio.sleep(self.delay_s)
        while self._pending:
            site_id = self._pending.pop()
            try:
                await self.rebalance(site_id)
            except SiteNotFound:
                self.plans.pop(site_id, None)
            except Exception:  # one site's failure does not stop the others'
                log.exception("load balancing failed", site=site_id)

    async def _follow_edits(self) -> None:
        """Sites edited by another process (``chargegrid site``) are seen within 5 s."""
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.sites.refresh()
            except Exception:
                log.exception("reading the sites failed")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- charging profiles ------------------------------------------------------------------

    async def _apply(
        self,
        slot: EvseSlot,
        allocation: Allocation,
        periods: list[tuple[int, float]],
        now: datetime,
    ) -> None:
        session = self._sessions.get(slot.key)
        version = self.connected(slot.station_id)
        if session is None or version is None:
            return
        payload = _tx_profile(version, slot, session, allocation, periods, now)
        try:
            result = await self.commands.send(slot.station_id, "SetChargingProfile", payload)
        except CommandError as exc:
            log.warning(
                "charging profile not sent",
                station_id=slot.station_id,
                evse=slot.evse_id,
                error=str(exc),
            )
            return
        status = result.response.get("status")
        if status == "Accepted":
            self._offered[slot.key] = allocation.current_a
            self._offered_periods[slot.key] = periods
        else:
            log.warning(
                "charging profile refused",
                station_id=slot.station_id,
                evse=slot.evse_id,
                status=status,
            )

    async def _send_defaults(self, station_id: str) -> None:
        version = self.connected(station_id)
        if version is None:
            return
        for site in self.sites.of_station(station_id):
            for slot in site.evses:
                if slot.station_id != station_id or not slot.smart:
                    continue
                payload = _default_profile(version, slot, self.clock.now())
                try:
                    await self.commands.send(station_id, "SetChargingProfile", payload)
                except CommandError as exc:
                    log.warning("default profile not sent", station_id=station_id, error=str(exc))


def _balance_each(
    inputs: tuple[Site, list[Demand], frozenset[str], float, list[tuple[datetime, Any]]],
) -> list[tuple[datetime, Plan]]:
    site, demands, offline, headroom, intervals = inputs
    return [
        (
            start,
            balance(site, demands, limits=limits, offline=offline, now=start, headroom_a=headroom),
        )
        for start, limits in intervals
    ]


def _periods(
    evse: str, plans: list[tuple[datetime, Plan]], now: datetime
) -> list[tuple[int, float]]:
    """The car's current from each moment, in seconds from ``now``; equal neighbours merged."""
    periods: list[tuple[int, float]] = []
    for start, plan in plans:
        allocation = plan.of(evse)
        current = allocation.current_a if allocation is not None else 0.0
        if not periods or abs(periods[-1][1] - current) > 1e-9:
            periods.append((int((start - now).total_seconds()), current))
    return periods


def _same(a: list[tuple[int, float]], b: list[tuple[int, float]] | None) -> bool:
    """The same schedule, but for changes below 0.1 A (moments compared to the minute: the
    same schedule sent a little later starts its periods a little earlier)."""
    if b is None or len(a) != len(b):
        return False
    for (at_a, current_a), (at_b, current_b) in zip(a, b, strict=True):
        if abs(current_a - current_b) >= _CHANGE_A - 1e-9:
            return False
        if at_a and at_b and abs(at_a - at_b) > 90:
            return False
    return True


def _schedule(periods: list[tuple[int, float]], phases: int, start: datetime) -> dict[str, Any]:
    return {
        "startSchedule": start.isoformat(),
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [
            {"startPeriod": offset, "limit": round(limit, 1), "numberPhases": phases}
            for offset, limit in periods
        ],
    }


def _tx_profile(
    version: str,
    slot: EvseSlot,
    session: _Session,
    allocation: Allocation,
    periods: list[tuple[int, float]],
    now: datetime,
) -> dict[str, Any]:
    schedule = _schedule(periods, len(allocation.phases), now)
    profile_id = TX_PROFILE_ID + slot.evse_id
    if version == "1.6":
        return {
            "connectorId": slot.evse_id,
            "csChargingProfiles": {
                "chargingProfileId": profile_id,
                "transactionId": session.transaction_id,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": schedule,
            },
        }
    return {
        "evseId": slot.evse_id,
        "chargingProfile": {
            "id": profile_id,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": session.station_tx_id,
            "chargingSchedule": [{"id": profile_id, **schedule}],
        },
    }


def _default_profile(version: str, slot: EvseSlot, now: datetime) -> dict[str, Any]:
    schedule = _schedule([(0, slot.fallback_a)], len(slot.wiring.phases), now)
    profile_id = DEFAULT_PROFILE_ID + slot.evse_id
    if version == "1.6":
        return {
            "connectorId": slot.evse_id,
            "csChargingProfiles": {
                "chargingProfileId": profile_id,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": schedule,
            },
        }
    return {
        "evseId": slot.evse_id,
        "chargingProfile": {
            "id": profile_id,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [{"id": profile_id, **schedule}],
        },
    }
