"""The :class:`LoadBalancer`: started and stopped with the server, and a run of a site (planned
over the horizon, each car whose schedule changed sent its new one, decreases first). Its parts
are in the mixins it is made of; what triggers a run and what is sent is in
:mod:`chargegrid.service.balancing`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog

from chargegrid.domain.balancing import Plan
from chargegrid.domain.site import Site
from chargegrid.service import charging_profiles as profiles
from chargegrid.service import planning
from chargegrid.service.balancing.defaults import Defaults
from chargegrid.service.balancing.sending import Change, Sending
from chargegrid.service.balancing.sessions import Sessions
from chargegrid.service.charging_profiles import Schedule
from chargegrid.service.events import EventBus

log = structlog.get_logger(__package__)  # one logger name for the whole balancer

REFRESH_S = 5.0
_ROUNDS = 3  # plans per run when stations refuse the decreases


class LoadBalancer(Sending, Sessions, Defaults):
    """The load balancer applied to every site (the constructor is
    :class:`~chargegrid.service.balancing.base.BalancerBase`'s)."""

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
    ) -> list[Change]:
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
            out.append(Change(slots[key], allocation, schedule, down))
        return out

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


def _schedule_of(evse: str, plans: list[tuple[datetime, Plan]]) -> Schedule:
    """The car's current from each moment; equal neighbours merged."""
    schedule: Schedule = []
    for start, plan in plans:
        allocation = plan.of(evse)
        current = allocation.current_a if allocation is not None else 0.0
        if not schedule or abs(schedule[-1][1] - current) > 1e-9:
            schedule.append((start, current))
    return schedule
