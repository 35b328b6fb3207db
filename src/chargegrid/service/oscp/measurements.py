"""What chargegrid sends a CP on its own clock (steps 3 and 5 of the exchange in
:mod:`chargegrid.service.oscp`): a tick sends the Heartbeats at the interval the CP asked, forgets
the compliance errors' blocks that ended, and sends UpdateGroupMeasurements (and, with
``asset_measurements``, UpdateAssetMeasurements) every ``measurement_interval_s``; the energy they
report is counted from the transactions' meter values."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import structlog

from chargegrid.domain import events
from chargegrid.protocols import oscp
from chargegrid.service.events import Envelope
from chargegrid.service.oscp.base import ProviderBase
from chargegrid.service.oscp.peers import Live, OscpPeer, PeerError

log = structlog.get_logger(__package__)  # one logger name for the whole Flexibility Provider


class Measurements(ProviderBase):
    """The heartbeat and measurements part of :class:`FlexibilityProvider`."""

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

    async def _measurements(self, peer: OscpPeer, live: Live, now: datetime) -> None:
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
        self, peer: OscpPeer, live: Live, group: str, now: datetime, since: datetime
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
