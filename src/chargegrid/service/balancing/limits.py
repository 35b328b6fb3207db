"""Limits and prices over time: set by the operator and the grid operators (OSCP, OpenADR), kept
in the :class:`~chargegrid.service.balancing.LimitStore` across restarts and read again when
another node of a cluster set some, and the moments within the horizon at which they change
(those a run plans the cars' schedules at)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import structlog

from chargegrid.domain.balancing import CircuitLimit
from chargegrid.service.balancing.base import BalancerBase
from chargegrid.service.planning import LimitBlock, PriceBlock

log = structlog.get_logger(__package__)  # one logger name for the whole balancer

HORIZON = timedelta(hours=24)  # how far ahead cars' schedules reach
MAX_PERIODS = 96  # moments of change within the horizon (a forecast in quarter hours)


class Limits(BalancerBase):
    """The limits and prices part of :class:`LoadBalancer`."""

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
