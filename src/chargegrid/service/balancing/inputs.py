"""What the balancer is given: the cars of a site and what they need, the limits in force, and
each EVSE it cannot steer (an offline station's, one whose profile is in doubt) with the current
it counts it at; taken as a snapshot on the event loop, so the planning may run on a thread."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from chargegrid.domain.balancing import Demand, Plan
from chargegrid.domain.site import EvseSlot, Policy, Site
from chargegrid.service import charging_profiles as profiles
from chargegrid.service import planning
from chargegrid.service.balancing.limits import HORIZON, Limits
from chargegrid.service.charging_profiles import Schedule
from chargegrid.service.planning import Inputs, Moment


class PlanInputs(Limits):
    """The part of :class:`LoadBalancer` that tells the balancer what it plans from."""

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

    def _may_draw(self, slot: EvseSlot, now: datetime) -> Schedule:
        """What the car may draw now, by what its station holds (or may hold)."""
        key = slot.key
        holds = self._doubt.get(key) or self._held.get(key)
        if holds is None:
            session = self._sessions.get(key)
            unknown = session is not None and session.inherited
            return [(now, slot.max_a if unknown else self._unsteered(slot))]
        return holds

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
