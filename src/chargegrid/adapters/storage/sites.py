"""The :class:`~chargegrid.service.sites.SiteStore` on SQLite or PostgreSQL: a
:class:`~.side.SideStore`, as sites change when an operator edits them. A site is written whole,
with its circuits and EVSEs, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy import exc as sa_exc

from chargegrid.adapters.storage import tables
from chargegrid.adapters.storage.errors import StorageError
from chargegrid.adapters.storage.side import SideStore, engines
from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import Circuit, EvseSlot, Policy, Site, Wiring
from chargegrid.service.balancing import LimitBlock, PriceBlock
from chargegrid.service.sites import SiteConflict

_S = tables.sites
_C = tables.site_circuits
_E = tables.site_evses
_L = tables.site_limits
_P = tables.site_prices


def open_site_store(url: str) -> SqlSiteStore:
    return SqlSiteStore(*engines(url))


class SqlSiteStore(SideStore):
    what = "site store"

    async def all(self) -> list[Site]:
        circuits: dict[str, list[Circuit]] = {}
        for row in await self._read(select(_C).order_by(_C.c.site_id, _C.c.id)):
            circuits.setdefault(row.site_id, []).append(
                Circuit(row.id, row.parent, row.limit_a, row.limit_w)
            )
        evses: dict[str, list[EvseSlot]] = {}
        for row in await self._read(select(_E).order_by(_E.c.station_id, _E.c.evse_id)):
            evses.setdefault(row.site_id, []).append(_to_slot(row))
        return [
            Site(
                row.id,
                tuple(circuits.get(row.id, ())),
                tuple(evses.get(row.id, ())),
                row.voltage_v,
                row.name,
                Policy(row.policy),
            )
            for row in await self._read(select(_S).order_by(_S.c.id))
        ]

    async def save(self, site: Site, at: datetime) -> None:
        async def write() -> None:
            async with self._writer.begin() as conn:
                await conn.execute(delete(_E).where(_E.c.site_id == site.id))
                await conn.execute(delete(_C).where(_C.c.site_id == site.id))
                await conn.execute(delete(_S).where(_S.c.id == site.id))
                await conn.execute(
                    insert(_S).values(
                        id=site.id,
                        name=site.name,
                        voltage_v=site.voltage_v,
                        policy=site.policy.value,
                        updated_at=at,
                    )
                )
                await conn.execute(
                    insert(_C),
                    [
                        {
                            "site_id": site.id,
                            "id": c.id,
                            "parent": c.parent,
                            "limit_a": c.limit_a,
                            "limit_w": c.limit_w,
                        }
                        for c in site.circuits
                    ],
                )
                if site.evses:
                    await conn.execute(insert(_E), [_slot_row(site.id, e) for e in site.evses])

        try:
            await self._whole(write())
        except sa_exc.IntegrityError as exc:  # an EVSE placed on another site meanwhile
            raise SiteConflict(
                f"an EVSE of site {site.id} is on another site (changed elsewhere)"
            ) from exc
        except sa_exc.SQLAlchemyError as exc:
            raise StorageError(f"{self.what} write failed: {exc}") from exc

    async def stamp(self) -> tuple[tuple[str, str], ...]:
        """Each site with the time it was last written: what changes when another process
        (the CLI, another node) edits one, whatever that process's clock says."""
        rows = await self._read(select(_S.c.id, _S.c.updated_at).order_by(_S.c.id))
        return tuple((row[0], str(row[1])) for row in rows)

    async def delete(self, site_id: str) -> bool:
        """The site, its circuits, EVSEs and limits, in one transaction."""

        async def write() -> bool:
            async with self._writer.begin() as conn:
                await conn.execute(delete(_L).where(_L.c.site_id == site_id))
                await conn.execute(delete(_P).where(_P.c.site_id == site_id))
                result = await conn.execute(delete(_S).where(_S.c.id == site_id))
                return bool(result.rowcount)

        try:
            return await self._whole(write())
        except sa_exc.SQLAlchemyError as exc:
            raise StorageError(f"{self.what} write failed: {exc}") from exc

    async def save_timeline(self, site_id: str, source: str, blocks: Sequence[LimitBlock]) -> None:
        """What ``source`` set on the site, replacing what it set before."""

        async def write() -> None:
            async with self._writer.begin() as conn:
                where = (_L.c.site_id == site_id) & (_L.c.source == source)
                await conn.execute(delete(_L).where(where))
                if blocks:
                    await conn.execute(
                        insert(_L),
                        [_limit_row(site_id, source, i, b) for i, b in enumerate(blocks)],
                    )

        try:
            await self._whole(write())
        except sa_exc.SQLAlchemyError as exc:
            raise StorageError(f"{self.what} write failed: {exc}") from exc

    async def save_prices(self, site_id: str, source: str, blocks: Sequence[PriceBlock]) -> None:
        """The prices ``source`` set on the site, replacing what it set before."""

        async def write() -> None:
            async with self._writer.begin() as conn:
                where = (_P.c.site_id == site_id) & (_P.c.source == source)
                await conn.execute(delete(_P).where(where))
                if blocks:
                    rows = [_price_row(site_id, source, i, b) for i, b in enumerate(blocks)]
                    await conn.execute(insert(_P), rows)

        try:
            await self._whole(write())
        except sa_exc.SQLAlchemyError as exc:
            raise StorageError(f"{self.what} write failed: {exc}") from exc

    async def prices(self) -> list[tuple[str, str, list[PriceBlock]]]:
        """Every source's prices on every site: (site id, source, blocks in order)."""
        out: dict[tuple[str, str], list[PriceBlock]] = {}
        query = select(_P).order_by(_P.c.site_id, _P.c.source, _P.c.seq)
        for row in await self._read(query):
            block = PriceBlock(row.price_per_kwh, row.currency, row.starts_at, row.ends_at)
            out.setdefault((row.site_id, row.source), []).append(block)
        return [(site, source, blocks) for (site, source), blocks in out.items()]

    async def timelines(self) -> list[tuple[str, str, list[LimitBlock]]]:
        """Every source's limits on every site: (site id, source, blocks in order)."""
        out: dict[tuple[str, str], list[LimitBlock]] = {}
        query = select(_L).order_by(_L.c.site_id, _L.c.source, _L.c.seq)
        for row in await self._read(query):
            phases = tuple(row.phase_a) if isinstance(row.phase_a, list) else (None,) * 3
            limit = CircuitLimit(row.limit_a, row.limit_w, phases)
            block = LimitBlock(row.circuit, limit, row.starts_at, row.ends_at)
            out.setdefault((row.site_id, row.source), []).append(block)
        return [(site, source, blocks) for (site, source), blocks in out.items()]


def _price_row(site_id: str, source: str, seq: int, block: PriceBlock) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "source": source,
        "seq": seq,
        "price_per_kwh": block.price_per_kwh,
        "currency": block.currency,
        "starts_at": block.start,
        "ends_at": block.end,
    }


def _limit_row(site_id: str, source: str, seq: int, block: LimitBlock) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "source": source,
        "seq": seq,
        "circuit": block.circuit,
        "starts_at": block.start,
        "ends_at": block.end,
        "limit_a": block.limit.limit_a,
        "limit_w": block.limit.limit_w,
        "phase_a": list(block.limit.phase_a),
    }


def _slot_row(site_id: str, slot: EvseSlot) -> dict[str, Any]:
    return {
        "station_id": slot.station_id,
        "evse_id": slot.evse_id,
        "site_id": site_id,
        "circuit": slot.circuit,
        "wiring": str(slot.wiring),
        "max_a": slot.max_a,
        "min_a": slot.min_a,
        "smart": slot.smart,
        "fallback_a": slot.fallback_a,
    }


def _to_slot(row: Any) -> EvseSlot:
    return EvseSlot(
        row.station_id,
        row.evse_id,
        row.circuit,
        Wiring.parse(row.wiring),
        row.max_a,
        row.min_a,
        row.smart,
        row.fallback_a,
    )
