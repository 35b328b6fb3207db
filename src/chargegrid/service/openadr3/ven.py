"""The :class:`OpenAdr3Ven`: started and stopped with the server, a loop that polls the VTN every
``poll_interval_s`` and ticks in between (an error is logged and the VEN goes on), and the energy
the target's cars import, counted from the transactions' meter values. Its parts are in the
mixins it is made of; the exchange they follow is in :mod:`chargegrid.service.openadr3`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from chargegrid.domain import events
from chargegrid.protocols import openadr3 as oadr
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.openadr3.client import TransportError
from chargegrid.service.openadr3.polling import Polling
from chargegrid.service.openadr3.reports import Reports


class OpenAdr3Ven(Polling, Reports):
    """chargegrid as OpenADR 3.0.1 VEN of one VTN (the constructor is
    :class:`~chargegrid.service.openadr3.base.VenBase`'s)."""

    async def start(self, bus: EventBus) -> None:
        self._stop_listening = bus.listen(self.on_event)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.transport.close()

    async def _run(self) -> None:
        next_poll = self.clock.now()
        while True:
            now = self.clock.now()
            if now >= next_poll:
                next_poll = now + timedelta(seconds=self.options.poll_interval_s)
                await self._guarded(self.poll(), "poll")
            await self._guarded(self.tick(), "tick")
            await asyncio.sleep(self.tick_s)

    async def _guarded(self, work: Any, what: str) -> None:
        try:
            await work
        except TransportError as exc:
            self.log.warning("OpenADR 3 VTN unreachable", during=what, error=str(exc))
        except oadr.OpenAdrError as exc:
            self.log.warning(
                "OpenADR 3 VTN answer not usable", during=what, status=exc.status, error=str(exc)
            )
        except Exception:
            self.log.exception("OpenADR 3 VEN failed", during=what)

    # --- energy, from the transactions' meter values ------------------------------------------

    def on_event(self, envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(event, events.TransactionStarted):
            self._tx_energy[event.transaction_id] = event.energy_wh or Decimal(0)
            return
        if not isinstance(event, events.TransactionUpdated | events.TransactionEnded):
            return
        if event.energy_wh is None:
            return
        delta = event.energy_wh - self._tx_energy.get(event.transaction_id, Decimal(0))
        if isinstance(event, events.TransactionEnded):
            self._tx_energy.pop(event.transaction_id, None)
        else:
            self._tx_energy[event.transaction_id] = event.energy_wh
        found = self.sites.slot(event.station_id, event.evse_id)
        if delta <= 0 or found is None:
            return
        site, slot = found
        if site.id == self.site_id and (
            self.circuit is None or self.circuit in site.path(slot.circuit)
        ):
            self.energy_wh += delta
