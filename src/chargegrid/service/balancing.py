"""Load balancing applied: the balancer (:mod:`chargegrid.domain.balancing`) run for a site
whenever something it depends on changes, and its currents sent to the stations as charging
profiles (:mod:`chargegrid.service.charging_profiles`).

What triggers a run of a site: a transaction starting or ending on one of its EVSEs, a car's
draw changing enough to matter (by a whole ampere or more, or falling clearly below what it was
offered), a car's needs (ISO 15118 NotifyEVChargingNeeds, or the API), a station of the site
connecting or going offline, the site being edited, or a limit set on it (by the operator, or
by the grid operator through OSCP or OpenADR). Triggers are gathered for ``delay_s`` (0.2 s) so
a burst of them costs one run. Each run plans the next 24 hours: the cars' currents now and at
each moment the limits change.

What is sent, only when a car's schedule changed (by 0.1 A or more) since its station last
accepted one: a TxProfile for the transaction (1.6 SetChargingProfile 3.13 / 5.16; 2.0.1 K01),
its periods the schedule. A paused car gets 0 A.

**What a car may draw is what its station last accepted, until it accepts another.** So:

* cars whose current goes down anywhere are sent their profiles first, and the others only
  once those are accepted;
* a station that refuses a profile, leaves before it is sent, or does not answer, keeps its car
  counted at the higher of the old and the new schedule, moment by moment (a fixed load for the
  others), and is sent it again after 30 s (doubling up to 10 minutes) and when it reconnects;
  so is one whose GetCompositeSchedule lets its car draw more than its profile;
* an offline station is counted at what it may draw unsteered: the higher of its TxDefault
  fallback and the schedule its car holds (or may hold), per EVSE, car or not (its fallback if
  it took its TxDefaultProfile, its maximum if it refused it); a car whose transaction was
  running before a restart counts at its EVSE's maximum until its station takes a profile;
* schedules are cut to 24 periods, the last the lowest of those it stands for.

Each smart EVSE of a connected station is given a TxDefaultProfile at its fallback current
(when the station boots or connects, and when an edit changes the fallback). A car that plugs
in draws that fallback for the moment (about a second) until its own TxProfile arrives: idle
EVSEs are not counted, so a site at its limit may be over it by one fallback for that second.
Set the fallback to 0 A where that matters: a car then waits for its profile to charge, and an
offline station charges no new car.

A car's draw is known from the power its meter values report. Without the number of phases it
draws on, the current per phase is taken as the power over one phase's voltage: never less
than the truth, so a car is only capped when it surely draws less than it was offered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from chargegrid.domain import events
from chargegrid.domain.balancing import Allocation, CircuitLimit, Demand, Plan
from chargegrid.domain.site import EvseSlot, Policy, Site
from chargegrid.service import charging_profiles as profiles
from chargegrid.service import planning
from chargegrid.service.charging_profiles import Schedule
from chargegrid.service.commands import CommandError, Commands
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.planning import Inputs, LimitBlock, Moment, PriceBlock
from chargegrid.service.ports import Clock, Store
from chargegrid.service.sites import SiteNotFound, Sites

__all__ = ["LimitBlock", "LimitStore", "LoadBalancer", "PriceBlock"]

log = structlog.get_logger(__name__)

REFRESH_S = 5.0
HORIZON = timedelta(hours=24)  # how far ahead cars' schedules reach
MAX_PERIODS = 96  # moments of change within the horizon (a forecast in quarter hours)
RETRY_S = 30.0  # a refused profile is tried again after this, doubling up to ...
RETRY_MAX_S = 600.0
_DRAW_CHANGE_A = 1.0
EARLY_NEEDS_KEPT = timedelta(minutes=10)  # a car's needs told before its transaction started
_ROUNDS = 3  # plans per run when stations refuse the decreases
_COMPOSITE_SLACK_A = 0.5  # a composite schedule this much above the profile is let be


@dataclass(slots=True)
class _Session:
    transaction_id: int
    station_tx_id: str
    started_at: datetime
    power_w: float | None = None
    delivered_wh: float | None = None  # energy so far, from the meter
    # what the car needs (ChargingNeeds): energy still wanted counted from ``needs_base_wh``
    needs_wh: float | None = None
    needs_base_wh: float = 0.0
    departure: datetime | None = None
    min_a: float | None = None
    max_a: float | None = None
    phases: int | None = None
    priority: int = 0
    inherited: bool = False  # read at start: what its station holds is not known
    known_since: float = field(default_factory=time.monotonic)  # when this process learnt of it

    def remaining_wh(self) -> float | None:
        if self.needs_wh is None:
            return None
        return max(0.0, self.needs_wh - ((self.delivered_wh or 0.0) - self.needs_base_wh))


@dataclass(frozen=True, slots=True)
class _Change:
    slot: EvseSlot
    allocation: Allocation
    schedule: Schedule
    down: bool  # lower than what the station holds at some moment: sent first


class LimitStore(Protocol):
    """Where the limits and prices over time are kept across restarts (and shared by the nodes
    of a cluster)."""

    async def save_timeline(
        self, site_id: str, source: str, blocks: Sequence[LimitBlock]
    ) -> None: ...

    async def timelines(self) -> list[tuple[str, str, list[LimitBlock]]]: ...

    async def save_prices(
        self, site_id: str, source: str, blocks: Sequence[PriceBlock]
    ) -> None: ...

    async def prices(self) -> list[tuple[str, str, list[PriceBlock]]]: ...


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
        retry_s: float = RETRY_S,
        limit_store: LimitStore | None = None,
    ) -> None:
        self.sites = sites
        self.commands = commands
        self.store = store
        self.connected = connected
        self.clock = clock
        self.delay_s = delay_s
        self.headroom_a = headroom_a
        self.retry_s = retry_s
        self.limit_store = limit_store
        # (kind, site, source) whose limits ("limits") or prices ("prices") changed
        self._unsaved: set[tuple[str, str, str]] = set()
        self._saving: asyncio.Task[None] | None = None
        self.plans: dict[str, Plan] = {}
        self._sessions: dict[str, _Session] = {}  # EVSE key ->
        self._held: dict[str, Schedule] = {}  # EVSE key -> TxProfile schedule its station took
        # key -> (fallback given, A counted meanwhile, sent/taken/refused)
        self._defaults: dict[str, tuple[float, float, str]] = {}
        self._resend: set[str] = set()  # keys whose TxDefaultProfile is given again
        # key -> what the car may draw while its station's state is in doubt (a profile refused
        # or not answered, a composite schedule above its profile): counted so, a fixed load
        self._doubt: dict[str, Schedule] = {}
        self._retrying: set[str] = set()  # in doubt, sent again at the next run
        self._failures: dict[str, int] = {}  # key -> profiles not taken in a row
        self._force: set[str] = set()  # keys sent a profile at the next run, changed or not
        self._early_needs: dict[str, events.ChargingNeeds] = {}  # told before the transaction
        self._no_composite: set[str] = set()  # stations that cannot tell their composite
        self._loaded: set[str] = set()  # stations whose running transactions were read
        self._ended: set[int] = set()  # transactions ended while a read was under way
        self._reading = 0
        self._blocks: dict[str, dict[str, list[LimitBlock]]] = {}  # site -> source ->
        self._prices: dict[str, dict[str, list[PriceBlock]]] = {}  # site -> source ->
        self._wakers: dict[str, asyncio.TimerHandle] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._pending: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_listening: Callable[[], None] | None = None
        self._plan_listeners: list[Callable[[str, Plan], None]] = []
        # cluster mode: whether this node runs the balancer (the lease holder), and who to tell
        # when limits set here were saved (the holder then reads them again)
        self.active: Callable[[], bool] = lambda: True
        self.on_limits_saved: Callable[[], None] = lambda: None
        # cluster mode: the running transactions read again from the database this often (s),
        # as events from other nodes come over a bus that may lose some
        self.resync_s: float | None = None

    async def start(self, bus: EventBus) -> None:
        await self._read_stored()  # what the operator and the grid operators set
        # listen first: a transaction that starts while the running ones are read is not lost
        self._stop_listening = bus.listen(self.on_event)
        self.sites.listen(self.schedule)
        for site in self.sites.all():
            self.schedule(site.id)
        self._spawn(self._follow_edits())

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
        for handle in [*self._wakers.values(), *self._retries.values()]:
            handle.cancel()
        if self._saving is not None:  # the limits set last are written before stopping
            await asyncio.gather(self._saving, return_exceptions=True)
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

    # --- limits and prices over time ---------------------------------------------------------

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

    def set_timeline(self, site_id: str, source: str, blocks: Sequence[LimitBlock]) -> None:
        """Limits over time from ``source`` (an operator, a grid operator's forecast or event),
        replacing what that source set before. The lowest in force at each moment wins."""
        self.sites.get(site_id)
        self._blocks.setdefault(site_id, {})[source] = list(blocks)
        self.schedule(site_id)
        self._save("limits", site_id, source)

    def _save(self, kind: str, site_id: str, source: str) -> None:
        if self.limit_store is None:
            return
        self._unsaved.add((kind, site_id, source))
        if self._saving is None or self._saving.done():
            self._saving = asyncio.get_running_loop().create_task(self._save_limits())

    async def reload_limits(self) -> None:
        """Read the limits and prices again from the store (another node of a cluster set
        some), and run each site."""
        await self._read_stored()
        for site in self.sites.all():
            self.schedule(site.id)

    async def _read_stored(self) -> None:
        if self.limit_store is None:
            return
        now = self.clock.now()
        limits: dict[str, dict[str, list[LimitBlock]]] = {}
        for site_id, source, blocks in await self.limit_store.timelines():
            kept = [b for b in blocks if b.end is None or b.end > now]
            if kept and self.sites.exists(site_id):
                limits.setdefault(site_id, {})[source] = kept
        prices: dict[str, dict[str, list[PriceBlock]]] = {}
        for site_id, source, found in await self.limit_store.prices():
            held = [b for b in found if b.end is None or b.end > now]
            if held and self.sites.exists(site_id):
                prices.setdefault(site_id, {})[source] = held
        for kind, site_id, source in self._unsaved:  # set here and not written yet: they stand
            if kind == "limits" and source in self._blocks.get(site_id, {}):
                limits.setdefault(site_id, {})[source] = self._blocks[site_id][source]
            elif kind == "prices" and source in self._prices.get(site_id, {}):
                prices.setdefault(site_id, {})[source] = self._prices[site_id][source]
        self._blocks, self._prices = limits, prices

    async def _save_limits(self) -> None:
        """Write the limits and prices that changed, the latest of each source (a burst costs
        one write per source)."""
        assert self.limit_store is not None
        while self._unsaved:
            kind, site_id, source = self._unsaved.pop()
            if not self.sites.exists(site_id):
                continue  # deleted meanwhile: its limits went with it
            try:
                if kind == "limits":
                    blocks = self._blocks.get(site_id, {}).get(source, [])
                    await self.limit_store.save_timeline(site_id, source, blocks)
                else:
                    prices = self._prices.get(site_id, {}).get(source, [])
                    await self.limit_store.save_prices(site_id, source, prices)
            except Exception:
                log.exception("limits not saved", site=site_id, source=source, kind=kind)
        try:
            self.on_limits_saved()
        except Exception:
            log.exception("telling of saved limits failed")

    def set_prices(self, site_id: str, source: str, blocks: Sequence[PriceBlock]) -> None:
        """Energy prices over time from ``source`` (a price signal, a tariff), replacing what
        that source set before. Where sources overlap, the latest set wins."""
        self.sites.get(site_id)
        prices = self._prices.setdefault(site_id, {})
        prices.pop(source, None)
        prices[source] = list(blocks)
        self.schedule(site_id)
        self._save("prices", site_id, source)

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

    def _moments(self, site_id: str, now: datetime) -> list[datetime]:
        """Now, and each moment within the horizon at which a limit changes, then (as many as
        there is room for) each at which a price does: limits first, as they keep the grid."""
        horizon = now + HORIZON

        def edges(blocks: Iterable[LimitBlock | PriceBlock]) -> set[datetime]:
            found = {e for b in blocks for e in (b.start, b.end) if e is not None}
            return {e for e in found if now < e < horizon}

        limits = edges(b for blocks in self._blocks.get(site_id, {}).values() for b in blocks)
        chosen = sorted({now} | limits)[:MAX_PERIODS]
        prices = edges(b for blocks in self._prices.get(site_id, {}).values() for b in blocks)
        room = MAX_PERIODS - len(chosen)
        if room > 0:
            chosen += sorted(prices - set(chosen))[:room]
        return sorted(chosen)

    # --- what the balancer is given -----------------------------------------------------------

    def demands(self, site: Site, moment: datetime | None = None) -> list[Demand]:
        moment = moment or self.clock.now()
        out = []
        for slot in site.evses:
            session = self._sessions.get(slot.key)
            if session is None:
                continue
            measured = None
            if session.power_w is not None:  # as if on one phase unless told: never less
                measured = session.power_w / (site.voltage_v * (session.phases or 1))
            out.append(
                Demand(
                    slot.key,
                    phases=session.phases or 3,
                    max_a=session.max_a,
                    min_a=session.min_a,
                    measured_a=measured,
                    offered_a=profiles.value_at(self._held.get(slot.key), moment),
                    priority=session.priority,
                    since=session.started_at,
                    energy_wh=session.remaining_wh(),
                    departure=session.departure,
                )
            )
        return out

    def _unsteered(self, slot: EvseSlot) -> float:
        """What a smart EVSE may draw while its station is offline, but for its car's TxProfile:
        the fallback its TxDefaultProfile set, or its maximum if the station refused it."""
        _, counted, state = self._defaults.get(
            slot.key, (slot.fallback_a, slot.fallback_a, "taken")
        )
        return slot.max_a if state == "refused" else max(counted, slot.fallback_a)

    def _fixed(self, site: Site, online: Mapping[str, bool], moment: datetime) -> dict[str, float]:
        """The EVSEs the balancer cannot steer at ``moment`` and the current each is counted at."""
        out: dict[str, float] = {}
        for slot in site.evses:
            if not slot.smart:
                continue  # the balancer counts it at its fallback
            key = slot.key
            if not online[slot.station_id]:
                out[key] = self._offline_draw(slot, moment)
            elif key in self._doubt and key not in self._retrying:
                out[key] = profiles.value_at(self._doubt[key], moment) or 0.0
        return out

    def _offline_draw(self, slot: EvseSlot, moment: datetime) -> float:
        """What an EVSE of an offline station may draw at ``moment``: its TxDefault fallback,
        or more if its car holds more (what it took, or may have taken); its maximum for a car
        whose station's profile is not known (a session from before a restart)."""
        current = self._unsteered(slot)
        session = self._sessions.get(slot.key)
        if session is None:
            return current
        if session.inherited and slot.key not in self._held:
            return slot.max_a
        holds = self._doubt.get(slot.key) or self._held.get(slot.key)
        return max(current, profiles.value_at(holds, moment) or 0.0)

    def _inputs(self, site_id: str, moments: list[datetime]) -> Inputs:
        """A snapshot of what the balancer needs, taken on the event loop: the planning itself
        may then run on a thread while events change the live state."""
        site = self.sites.get(site_id)
        online = {e.station_id: self.connected(e.station_id) is not None for e in site.evses}
        offline = frozenset(e.key for e in site.evses if not online[e.station_id])
        return Inputs(
            site,
            self.demands(site, moments[0]),
            offline,
            self.headroom_a,
            [Moment(m, self.limits(site_id, m), self._fixed(site, online, m)) for m in moments],
            moments[0] + HORIZON,
            tuple(b for blocks in self._prices.get(site_id, {}).values() for b in blocks),
        )

    def snapshot(self, site_id: str) -> Inputs:
        """What the balancer would plan the site from now: its cars, the limits in force and
        each EVSE it cannot steer with the current it counts it at (``moments[0].fixed``)."""
        return self._inputs(site_id, [self.clock.now()])

    def preview(self, site_id: str) -> Plan:
        """What the balancer gives each car of the site now, sending nothing (the ``cost``
        policy's plan of the moment is its last run's)."""
        now = self.clock.now()
        site = self.sites.get(site_id)
        if site.policy is Policy.COST and site_id in self.plans:
            return self.plans[site_id]
        inputs = self._inputs(site_id, [now])
        return planning.plan(replace(inputs, site=replace(site, policy=Policy.EQUAL)))[0][1]

    # --- a run ----------------------------------------------------------------------------------

    async def rebalance(self, site_id: str) -> Plan:
        """Run the balancer for the site, now and at each moment its limits change within the
        horizon, and send each car whose schedule changed its new one: decreases first."""
        site = self.sites.get(site_id)
        await self._read_sessions(site)
        self._send_defaults(site)
        plan = Plan(())
        try:
            for round_ in range(_ROUNDS):
                now = self.clock.now()
                inputs = self._inputs(site_id, self._moments(site_id, now))
                plans = await asyncio.to_thread(planning.plan, inputs)
                plan = plans[0][1]
                changes = self._changes(site, plans, now)
                downs = [c for c in changes if c.down]
                taken = await asyncio.gather(*(self._apply(c) for c in downs))
                self._retrying.difference_update(c.slot.key for c in downs)
                if all(taken):
                    await asyncio.gather(*(self._apply(c) for c in changes if not c.down))
                    break
                if round_ == _ROUNDS - 1:  # what was not taken is counted; the rises wait
                    log.warning("stations refuse lower currents", site=site_id)
        finally:
            self._retrying.difference_update(e.key for e in site.evses)
            self._wake_at(site_id, self._moments(site_id, self.clock.now())[1:])
            self._retry_later(site)
        self.plans[site_id] = plan
        if plan.overloaded:
            log.warning("site over its limits", site=site_id, limits=list(plan.overloaded))
        for listener in self._plan_listeners:
            try:
                listener(site_id, plan)
            except Exception:
                log.exception("a plan listener failed", site=site_id)
        return plan

    def _changes(
        self, site: Site, plans: list[tuple[datetime, Plan]], now: datetime
    ) -> list[_Change]:
        slots = {e.key: e for e in site.evses}
        out = []
        for allocation in plans[0][1].allocations:
            if allocation.state == "fixed":
                continue
            key = allocation.evse
            schedule = profiles.capped(_schedule_of(key, plans))
            held = self._held.get(key)
            again = key in self._force or key in self._retrying
            if not again and profiles.same(schedule, held):
                continue
            down = key in self._retrying or profiles.lower_somewhere(
                schedule, self._may_draw(slots[key], now), now
            )
            out.append(_Change(slots[key], allocation, schedule, down))
        return out

    def _may_draw(self, slot: EvseSlot, now: datetime) -> Schedule:
        """What the car may draw now, by what its station holds (or may hold)."""
        key = slot.key
        holds = self._doubt.get(key) or self._held.get(key)
        if holds is None:
            session = self._sessions.get(key)
            unknown = session is not None and session.inherited
            return [(now, slot.max_a if unknown else self._unsteered(slot))]
        return holds

    async def _apply(self, change: _Change) -> bool:
        """Send the car its schedule; whether the station took it (or there was nothing to)."""
        slot = change.slot
        key = slot.key
        session = self._sessions.get(key)
        if session is None:
            return True  # the transaction ended: nothing to hold
        version = self.connected(slot.station_id)
        status: object = "not connected"
        if version is not None:
            payload = profiles.tx_profile(
                version,
                slot,
                session.transaction_id,
                session.station_tx_id,
                change.schedule,
                len(change.allocation.phases),
            )
            self._force.discard(key)
            try:
                result = await self.commands.send(slot.station_id, "SetChargingProfile", payload)
                status = result.response.get("status")
            except CommandError as exc:
                status = f"not answered: {exc}"
            except Exception as exc:  # the profile may have gone out: counted as if not answered
                log.exception("charging profile failed", station_id=slot.station_id)
                status = f"failed: {type(exc).__name__}"
        if self._sessions.get(key) is not session:
            return True  # the transaction ended meanwhile
        if status == "Accepted":
            self._held[key] = change.schedule
            self._doubt.pop(key, None)
            self._failures.pop(key, None)
            session.inherited = False
            if slot.station_id not in self._no_composite and version is not None:
                self._spawn(self._check_composite(slot, version, change))
            return True
        # the station may hold the old schedule or (not answered) the new one: the higher
        may = profiles.upper(self._may_draw(slot, change.schedule[0][0]), change.schedule)
        self._doubt[key] = may
        self._failures[key] = self._failures.get(key, 0) + 1
        log.warning(
            "charging profile not taken",
            station_id=slot.station_id,
            evse=slot.evse_id,
            status=status,
            counted_a=may[0][1],
        )
        return False

    async def _check_composite(self, slot: EvseSlot, version: str, change: _Change) -> None:
        """Ask the station what it will really let the car draw (GetCompositeSchedule: 1.6
        3.13.4, 2.0.1 K08). A station whose composite schedule is above what it accepted is
        counted at its composite, like one that refused, and tried again later. A station
        that cannot answer is not asked again."""
        key = slot.key
        payload = profiles.composite_request(version, slot.evse_id)
        try:
            result = await self.commands.send(slot.station_id, "GetCompositeSchedule", payload)
        except CommandError as exc:
            self._no_composite.add(slot.station_id)
            log.info("no composite schedule", station_id=slot.station_id, error=str(exc))
            return
        if self._held.get(key) is not change.schedule:
            return  # another profile since
        phases = len(change.allocation.phases)
        found = profiles.composite_limit(result.response, self._voltage(slot), phases)
        if found is None:
            if result.response.get("status") != "Accepted":
                self._no_composite.add(slot.station_id)
            return
        window = change.schedule[0][0] + timedelta(seconds=profiles.COMPOSITE_WINDOW_S)
        told = max(current for moment, current in change.schedule if moment < window)
        if found <= told + _COMPOSITE_SLACK_A:
            return
        log.warning(
            "station lets its car draw more than its profile",
            station_id=slot.station_id,
            evse=slot.evse_id,
            profile_a=told,
            composite_a=found,
        )
        self._doubt[key] = profiles.upper(change.schedule, [(change.schedule[0][0], found)])
        self._failures[key] = self._failures.get(key, 0) + 1
        self._touch(slot.station_id, slot.evse_id)

    def _voltage(self, slot: EvseSlot) -> float:
        found = self.sites.slot(slot.station_id, slot.evse_id)
        return found[0].voltage_v if found is not None else 230.0

    def _retry_later(self, site: Site) -> None:
        """Send the cars in doubt their profiles again, later each time they are not taken.
        They stay counted as they are until their station takes one."""
        stuck = [e.key for e in site.evses if e.key in self._doubt]
        if not stuck or site.id in self._retries:
            return
        tries = max(self._failures.get(k, 1) for k in stuck)
        delay = min(self.retry_s * 2 ** (tries - 1), RETRY_MAX_S)

        def retry() -> None:
            self._retries.pop(site.id, None)
            for key in stuck:
                station_id = key.rsplit("/", 1)[0]
                if key in self._doubt and self.connected(station_id) is not None:
                    self._retrying.add(key)
            self.schedule(site.id)

        self._retries[site.id] = asyncio.get_running_loop().call_later(delay, retry)

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

    # --- what the balancer knows of the sessions ----------------------------------------------

    async def _read_sessions(self, site: Site) -> None:
        """The running transactions of the site's stations not yet known: at start, and for
        stations added to a site later. Events that came meanwhile win over what is read."""
        unread = sorted({e.station_id for e in site.evses} - self._loaded)
        if not unread:
            return
        self._reading += 1
        try:
            for station_id in unread:
                for tx in await self.store.active_transactions(station_id):
                    key = f"{tx.station_id}/{tx.evse_id}"
                    if tx.id not in self._ended and key not in self._sessions:
                        self._sessions[key] = _Session(
                            tx.id, tx.station_tx_id, tx.started_at, inherited=True
                        )
                self._loaded.add(station_id)
        finally:
            self._reading -= 1
            if not self._reading:
                self._ended.clear()

    def on_event(self, envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(event, events.TransactionStarted):
            key = f"{event.station_id}/{event.evse_id}"
            self._sessions[key] = _Session(
                event.transaction_id, event.station_tx_id, event.started_at
            )
            self._forget(key)
            early = self._early_needs.pop(key, None)
            if early is not None and event.at - early.at <= EARLY_NEEDS_KEPT:
                self._needs(early)
            self._touch(event.station_id, event.evse_id)
        elif isinstance(event, events.TransactionUpdated):
            key = f"{event.station_id}/{event.evse_id}"
            session = self._sessions.get(key)
            if session is None:
                return
            if event.energy_wh is not None:
                session.delivered_wh = float(event.energy_wh)
            if event.power_w is None:
                return
            before = session.power_w
            session.power_w = float(event.power_w)
            if self._draw_matters(key, before, session.power_w):
                self._touch(event.station_id, event.evse_id)
        elif isinstance(event, events.TransactionEnded):
            key = f"{event.station_id}/{event.evse_id}"
            self._sessions.pop(key, None)
            if self._reading:
                self._ended.add(event.transaction_id)
            self._forget(key)
            self._touch(event.station_id, event.evse_id)
        elif isinstance(event, events.ChargingNeeds):
            self._needs(event)
        elif isinstance(event, events.StationOnline | events.StationBooted):
            if isinstance(event, events.StationBooted) and event.registration != "Accepted":
                return
            for key in [k for k in self._defaults if k.rsplit("/", 1)[0] == event.station_id]:
                self._resend.add(key)  # given again: the station may have lost them
            for key in [k for k in self._doubt if k.rsplit("/", 1)[0] == event.station_id]:
                self._retrying.add(key)  # what it holds is in doubt: sent again
            for site in self.sites.of_station(event.station_id):
                self.schedule(site.id)
        elif isinstance(event, events.StationOffline):
            for site in self.sites.of_station(event.station_id):
                self.schedule(site.id)

    def _forget(self, key: str) -> None:
        self._held.pop(key, None)
        self._doubt.pop(key, None)
        self._retrying.discard(key)
        self._failures.pop(key, None)
        self._force.discard(key)

    def _needs(self, event: events.ChargingNeeds) -> None:
        """A car's needs: the balancer plans for them and the car gets a profile at once."""
        key = f"{event.station_id}/{event.evse_id}"
        session = self._sessions.get(key)
        if session is None:  # ISO 15118 tells before the transaction starts (TxStartPoint)
            self._early_needs[key] = event
            return
        if event.energy_wh is not None:
            session.needs_wh = event.energy_wh
            session.needs_base_wh = session.delivered_wh or 0.0
        if event.departure is not None:
            session.departure = event.departure
        if event.min_current_a is not None:
            session.min_a = event.min_current_a
        if event.max_current_a is not None:
            session.max_a = event.max_current_a
        if event.phases is not None:
            session.phases = event.phases
        if event.priority is not None:
            session.priority = event.priority
        self._force.add(key)
        self._touch(event.station_id, event.evse_id)

    def session_needs(self, station_id: str, evse_id: int) -> dict[str, Any] | None:
        """What the balancer knows a car at the EVSE needs; None without a transaction."""
        session = self._sessions.get(f"{station_id}/{evse_id}")
        if session is None:
            return None
        return {
            "transaction_id": session.transaction_id,
            "energy_wh": session.remaining_wh(),
            "departure": session.departure,
            "min_current_a": session.min_a,
            "max_current_a": session.max_a,
            "phases": session.phases,
            "priority": session.priority,
        }

    def schedule(self, site_id: str) -> None:
        if not self.active():  # another node of the cluster runs the balancer
            return
        self._pending.add(site_id)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._run_pending())

    def _touch(self, station_id: str, evse_id: int) -> None:
        found = self.sites.slot(station_id, evse_id)
        if found is not None:
            self.schedule(found[0].id)

    def _draw_matters(self, key: str, before: float | None, now: float) -> bool:
        station_id, evse_id = key.rsplit("/", 1)
        found = self.sites.slot(station_id, int(evse_id))
        if found is None:
            return False
        voltage = found[0].voltage_v
        if before is None or abs(now - before) / voltage >= _DRAW_CHANGE_A:
            return True
        offered = profiles.value_at(self._held.get(key), self.clock.now())
        return offered is not None and now / voltage < offered - self.headroom_a

    async def _run_pending(self) -> None:
        await asyncio.sleep(self.delay_s)
        while self._pending:
            site_id = self._pending.pop()
            try:
                await self.rebalance(site_id)
            except SiteNotFound:  # deleted: its limits went with it
                self.plans.pop(site_id, None)
                self._blocks.pop(site_id, None)
                self._prices.pop(site_id, None)
            except Exception:  # one site's failure does not stop the others'
                log.exception("load balancing failed", site=site_id)

    async def _follow_edits(self) -> None:
        """Sites edited by another process (``chargegrid site``) are seen within 5 s; with
        ``resync_s``, the running transactions are read again from the database that often."""
        last_sync = self.clock.now()
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.sites.refresh()
                if self.resync_s is not None and self.active():
                    now = self.clock.now()
                    if (now - last_sync).total_seconds() >= self.resync_s:
                        last_sync = now
                        await self.resync()
            except Exception:
                log.exception("reading the sites failed")

    async def resync(self) -> None:
        """Make the sessions known here those the database holds for the sites' stations: a
        transaction whose start or end was missed is taken in or let go."""
        self._reading += 1  # transactions that end meanwhile are not taken back in
        try:
            for site in self.sites.all():
                if await self._resync_site(site):
                    log.warning("sessions read again from the database", site=site.id)
                    self.schedule(site.id)
        finally:
            self._reading -= 1
            if not self._reading:
                self._ended.clear()

    async def _resync_site(self, site: Site) -> bool:
        changed = False
        for station_id in sorted({e.station_id for e in site.evses}):
            asked = time.monotonic()
            running = {
                f"{tx.station_id}/{tx.evse_id}": tx
                for tx in await self.store.active_transactions(station_id)
            }
            for slot in site.evses:
                if slot.station_id != station_id:
                    continue
                key, known = slot.key, self._sessions.get(slot.key)
                tx = running.get(key)
                if tx is None and known is not None and known.known_since < asked:
                    self._sessions.pop(key, None)  # its end was missed
                    self._forget(key)
                    changed = True
                elif (
                    tx is not None
                    and tx.id not in self._ended
                    and (known is None or known.transaction_id != tx.id)
                    and (known is None or known.known_since < asked)
                ):
                    self._sessions[key] = _Session(tx.id, tx.station_tx_id, tx.started_at)
                    self._forget(key)  # its start was missed
                    changed = True
        return changed

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- TxDefaultProfiles ----------------------------------------------------------------------

    def _send_defaults(self, site: Site) -> None:
        """Each smart EVSE of a connected station that does not hold its fallback yet gets it;
        until the station takes it, the EVSE is counted at the higher of the old and the new."""
        for slot in site.evses:
            key = slot.key
            if not slot.smart or self.connected(slot.station_id) is None:
                continue
            given = self._defaults.get(key)
            if given is not None and given[0] == slot.fallback_a and key not in self._resend:
                continue
            self._resend.discard(key)
            if given is None:
                counted = slot.fallback_a
            elif given[2] == "refused":
                counted = slot.max_a
            else:
                counted = max(given[1], slot.fallback_a)
            self._defaults[key] = (slot.fallback_a, counted, "sent")
            self._spawn(self._send_default(slot))

    async def _send_default(self, slot: EvseSlot) -> None:
        key = slot.key
        sent = self._defaults.get(key)
        version = self.connected(slot.station_id)
        status: object = "not connected"
        if version is not None:
            payload = profiles.default_profile(version, slot, self.clock.now())
            try:
                result = await self.commands.send(slot.station_id, "SetChargingProfile", payload)
                status = result.response.get("status")
            except CommandError as exc:
                status = f"not answered: {exc}"
            except Exception as exc:
                log.exception("default profile failed", station_id=slot.station_id)
                status = f"failed: {type(exc).__name__}"
        taken = status == "Accepted"
        if sent is not None and self._defaults.get(key) == sent:
            if taken:
                self._defaults[key] = (slot.fallback_a, slot.fallback_a, "taken")
            elif version is None:
                self._resend.add(key)  # given when it is back
            else:
                self._defaults[key] = (slot.fallback_a, sent[1], "refused")
        if not taken:
            log.warning(
                "default profile not taken",
                station_id=slot.station_id,
                evse=slot.evse_id,
                status=status,
            )


def _schedule_of(evse: str, plans: list[tuple[datetime, Plan]]) -> Schedule:
    """The car's current from each moment; equal neighbours merged."""
    schedule: Schedule = []
    for start, plan in plans:
        allocation = plan.of(evse)
        current = allocation.current_a if allocation is not None else 0.0
        if not schedule or abs(schedule[-1][1] - current) > 1e-9:
            schedule.append((start, current))
    return schedule
