"""A car's TxProfile sent to its station (1.6 SetChargingProfile 3.13 / 5.16; 2.0.1 K01), and
what follows: a profile taken is what the car may draw, checked against the station's
GetCompositeSchedule; one refused or not answered leaves the car in doubt, counted at the higher
of the old and the new schedule and sent again later (after ``retry_s``, doubling up to
:data:`RETRY_MAX_S`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import structlog

from chargegrid.domain.balancing import Allocation
from chargegrid.domain.site import EvseSlot, Site
from chargegrid.service import charging_profiles as profiles
from chargegrid.service.balancing.base import RETRY_MAX_S
from chargegrid.service.balancing.inputs import PlanInputs
from chargegrid.service.charging_profiles import Schedule
from chargegrid.service.commands import CommandError

log = structlog.get_logger(__package__)  # one logger name for the whole balancer

_COMPOSITE_SLACK_A = 0.5  # a composite schedule this much above the profile is let be


@dataclass(frozen=True, slots=True)
class Change:
    slot: EvseSlot
    allocation: Allocation
    schedule: Schedule
    down: bool  # lower than what the station holds at some moment: sent first


class Sending(PlanInputs):
    """The part of :class:`LoadBalancer` that sends the cars their profiles."""

    async def _apply(self, change: Change) -> bool:
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

    async def _check_composite(self, slot: EvseSlot, version: str, change: Change) -> None:
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
