"""What the balancer knows of the sessions: the running transactions read from the database (at
start, for stations added to a site later, and again every ``resync_s`` in a cluster), and the
events that change them or call for a run (a transaction starting or ending, a car's draw or
needs changing, a station connecting or going offline)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import structlog

from chargegrid.domain import events
from chargegrid.domain.site import Site
from chargegrid.service import charging_profiles as profiles
from chargegrid.service.balancing.base import BalancerBase, Session
from chargegrid.service.events import Envelope

log = structlog.get_logger(__package__)  # one logger name for the whole balancer

_DRAW_CHANGE_A = 1.0
EARLY_NEEDS_KEPT = timedelta(minutes=10)  # a car's needs told before its transaction started


class Sessions(BalancerBase):
    """The sessions part of :class:`LoadBalancer`."""

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
                        self._sessions[key] = Session(
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
            self._sessions[key] = Session(
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

    # --- read again from the database (cluster mode) ------------------------------------------

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
                    self._sessions[key] = Session(tx.id, tx.station_tx_id, tx.started_at)
                    self._forget(key)  # its start was missed
                    changed = True
        return changed
