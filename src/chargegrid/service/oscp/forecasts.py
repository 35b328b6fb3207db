"""UpdateGroupCapacityForecast (step 4 of the exchange in :mod:`chargegrid.service.oscp`): a
forecast, whole or in segments, checked as each segment comes and applied once complete; a
CONSUMPTION forecast becomes limits over time on the group's circuit."""

from __future__ import annotations

import structlog

from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import SITE_PHASES
from chargegrid.protocols import oscp
from chargegrid.service.balancing import LimitBlock
from chargegrid.service.oscp.base import ProviderBase
from chargegrid.service.oscp.peers import OscpPeer, PeerError, Segments

log = structlog.get_logger(__package__)  # one logger name for the whole Flexibility Provider

MAX_SEGMENTS = 100


class Forecasts(ProviderBase):
    """The capacity forecasts part of :class:`FlexibilityProvider`."""

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
            live.segments[message.group_id] = Segments(
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
