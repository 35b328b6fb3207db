"""Asking a CP for capacity, and owning up to what cannot be kept (steps 6 and 7 of the exchange
in :mod:`chargegrid.service.oscp`): AdjustGroupCapacityForecast when the operator asks or when a
run of the balancer pauses cars that more capacity would let charge; GroupCapacityComplianceError
when what the balancer cannot steer is over the forecast."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import structlog

from chargegrid.domain.balancing import CircuitLimit, Plan
from chargegrid.protocols import oscp
from chargegrid.service import oscp_signals as signals
from chargegrid.service.oscp.base import ProviderBase
from chargegrid.service.oscp.peers import Live, NotDelivered, OscpPeer, PeerError
from chargegrid.service.planning import Inputs

log = structlog.get_logger(__package__)  # one logger name for the whole Flexibility Provider


class Capacity(ProviderBase):
    """The capacity adjustment and compliance part of :class:`FlexibilityProvider`."""

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
        AdjustGroupCapacityForecast for the groups on the site that need one (see the package's
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
        live: Live,
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
        live: Live,
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
        live: Live,
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
