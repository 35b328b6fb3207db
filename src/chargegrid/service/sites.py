"""The network's sites and their electrical trees, as operators edit them (REST API, CLI).

Sites are kept in memory (they change when an operator edits them and are read at every
rebalancing) and written through to the :class:`SiteStore`. Every change is checked by the
domain rules (:func:`chargegrid.domain.site.check`) before it is stored; listeners (the load
balancer) hear of each change.

Errors: :class:`~chargegrid.domain.site.SiteError` for a site that breaks the rules (HTTP 422),
:class:`SiteConflict` for an EVSE another site has already (409), :class:`SiteNotFound` (404).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Protocol

from chargegrid.domain.site import Circuit, EvseSlot, Site, SiteError
from chargegrid.service.ports import Clock


class SiteStore(Protocol):
    async def all(self) -> list[Site]: ...

    async def save(self, site: Site, at: datetime) -> None: ...

    async def delete(self, site_id: str) -> bool: ...

    async def stamp(self) -> Hashable:
        """A value that changes whenever any site is written, by any process."""
        ...

    async def close(self) -> None: ...


class SiteConflict(Exception):
    """An EVSE is on another site already."""


class SiteNotFound(LookupError):
    """No site with that id (HTTP 404)."""


class Sites:
    def __init__(self, store: SiteStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._sites: dict[str, Site] = {}
        self._stamp: Hashable = None
        self._listeners: list[Callable[[str], None]] = []

    async def load(self) -> None:
        self._stamp = await self.store.stamp()
        self._sites = {site.id: site for site in await self.store.all()}

    async def refresh(self) -> None:
        """Read the sites again if another process changed them; listeners hear of each site
        that changed."""
        stamp = await self.store.stamp()
        if stamp == self._stamp:
            return
        before = self._sites
        await self.load()
        for site_id in sorted(set(before) | set(self._sites)):
            if before.get(site_id) != self._sites.get(site_id):
                self._changed(site_id)

    def listen(self, listener: Callable[[str], None]) -> None:
        """``listener(site_id)`` after each change of a site (its removal included)."""
        self._listeners.append(listener)

    def all(self) -> list[Site]:
        return [self._sites[k] for k in sorted(self._sites)]

    def exists(self, site_id: str) -> bool:
        return site_id in self._sites

    def get(self, site_id: str) -> Site:
        site = self._sites.get(site_id)
        if site is None:
            raise SiteNotFound(f"no site {site_id}")
        return site

    def of_station(self, station_id: str) -> list[Site]:
        return [s for s in self.all() if any(e.station_id == station_id for e in s.evses)]

    def slot(self, station_id: str, evse_id: int) -> tuple[Site, EvseSlot] | None:
        for site in self._sites.values():
            for slot in site.evses:
                if slot.station_id == station_id and slot.evse_id == evse_id:
                    return site, slot
        return None

    async def put(self, site: Site) -> Site:
        """Create or replace ``site`` whole."""
        for slot in site.evses:
            found = self.slot(slot.station_id, slot.evse_id)
            if found is not None and found[0].id != site.id:
                raise SiteConflict(f"EVSE {slot.key} is on site {found[0].id}")
        await self.store.save(site, self.clock.now())
        self._sites[site.id] = site
        self._stamp = await self.store.stamp()
        self._changed(site.id)
        return site

    async def delete(self, site_id: str) -> bool:
        if site_id not in self._sites:
            return False
        await self.store.delete(site_id)
        del self._sites[site_id]
        self._stamp = await self.store.stamp()
        self._changed(site_id)
        return True

    async def place(self, site_id: str, slot: EvseSlot) -> Site:
        """Put an EVSE on a circuit of the site (or move it there, within the site)."""
        site = self.get(site_id)
        others = tuple(e for e in site.evses if e.key != slot.key)
        return await self.put(_replace(site, evses=(*others, slot)))

    async def remove(self, site_id: str, station_id: str, evse_id: int) -> bool:
        site = self.get(site_id)
        kept = tuple(e for e in site.evses if (e.station_id, e.evse_id) != (station_id, evse_id))
        if len(kept) == len(site.evses):
            return False
        await self.put(_replace(site, evses=kept))
        return True

    async def set_circuit(self, site_id: str, circuit: Circuit) -> Site:
        """Add a circuit, or change one (its parent or limits)."""
        site = self.get(site_id)
        others = tuple(c for c in site.circuits if c.id != circuit.id)
        return await self.put(_replace(site, circuits=(*others, circuit)))

    async def remove_circuit(self, site_id: str, circuit_id: str) -> bool:
        site = self.get(site_id)
        if not any(c.id == circuit_id for c in site.circuits):
            return False
        if any(c.parent == circuit_id for c in site.circuits) or any(
            e.circuit == circuit_id for e in site.evses
        ):
            raise SiteError(f"circuit {circuit_id} still has circuits or EVSEs on it")
        kept = tuple(c for c in site.circuits if c.id != circuit_id)
        await self.put(_replace(site, circuits=kept))
        return True

    def _changed(self, site_id: str) -> None:
        for listener in list(self._listeners):
            listener(site_id)


def _replace(site: Site, **changes: object) -> Site:
    """A changed copy, checked by the domain's rules (SiteError otherwise)."""
    return dataclasses.replace(site, **changes)  # type: ignore[arg-type]
