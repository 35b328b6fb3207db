"""The site store on SQLite and PostgreSQL: a site written whole comes back the same, a second
write replaces it (circuits and EVSEs it no longer has go), deleting it takes its circuits and
EVSEs, and an EVSE cannot be on two sites (the primary key, whatever the service checks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from chargegrid.adapters.storage.sites import SqlSiteStore, open_site_store
from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import Circuit, EvseSlot, Policy, Site, Wiring
from chargegrid.service.balancing import LimitBlock, PriceBlock
from chargegrid.service.sites import SiteConflict

AT = datetime(2026, 12, 2, 12, tzinfo=UTC)
DEPOT = Site(
    "depot",
    (
        Circuit("grid", None, 250.0, 150_000.0),
        Circuit("garage", "grid", 63.0),
        Circuit("yard", "grid"),
    ),
    (
        EvseSlot("CS-1", 1, "garage", Wiring.parse("L2L3L1"), 32.0, 6.0, True, 8.0),
        EvseSlot("CS-1", 2, "garage", Wiring.parse("L3"), 16.0, 0.0, False, 10.0),
        EvseSlot("CS-2", 1, "yard"),
    ),
    400 / 3**0.5,
    "Depot",
    Policy.PRIORITY,
)


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[SqlSiteStore]:
    opened = open_site_store(sql_url)
    try:
        yield opened
    finally:
        await opened.close()


def _normal(site: Site) -> Site:
    """The same site with its circuits and EVSEs in the store's order."""
    return Site(
        site.id,
        tuple(sorted(site.circuits, key=lambda c: c.id)),
        tuple(sorted(site.evses, key=lambda e: (e.station_id, e.evse_id))),
        site.voltage_v,
        site.name,
        site.policy,
    )


async def test_round_trip_replace_delete(store: SqlSiteStore) -> None:
    await store.save(DEPOT, AT)
    assert await store.all() == [_normal(DEPOT)]
    smaller = Site("depot", (Circuit("grid", None, 100.0),), (EvseSlot("CS-9", 1, "grid"),))
    await store.save(smaller, AT)
    assert await store.all() == [smaller]
    other = Site("other", (Circuit("main", None, 40.0),))
    await store.save(other, AT)
    assert [s.id for s in await store.all()] == ["depot", "other"]
    assert await store.delete("depot")
    assert not await store.delete("depot")
    assert await store.all() == [other]


async def test_an_evse_on_one_site_only(store: SqlSiteStore) -> None:
    await store.save(DEPOT, AT)
    thief = Site("thief", (Circuit("main", None),), (EvseSlot("CS-2", 1, "main"),))
    with pytest.raises(SiteConflict, match="on another site"):  # a 409 at the API
        await store.save(thief, AT)
    assert [s.id for s in await store.all()] == ["depot"]  # nothing of it was written


async def test_limits_over_time_are_kept_per_source(store: SqlSiteStore) -> None:
    await store.save(DEPOT, AT)
    operator = [
        LimitBlock("grid", CircuitLimit(limit_a=100.0)),
        LimitBlock("garage", CircuitLimit(limit_w=11_000.0), AT, AT + timedelta(hours=1)),
    ]
    grid = [LimitBlock("grid", CircuitLimit(phase_a=(40.0, None, 32.5)), AT)]
    await store.save_timeline("depot", "operator", operator)
    await store.save_timeline("depot", "oscp:dso:g1", grid)
    assert sorted(await store.timelines()) == [
        ("depot", "operator", operator),
        ("depot", "oscp:dso:g1", grid),
    ]
    await store.save_timeline("depot", "operator", operator[1:])  # replaces that source's
    await store.save(DEPOT, AT + timedelta(minutes=1))  # an edit of the site keeps them
    assert dict(((s, src), b) for s, src, b in await store.timelines()) == {
        ("depot", "operator"): operator[1:],
        ("depot", "oscp:dso:g1"): grid,
    }
    await store.save_timeline("depot", "oscp:dso:g1", [])
    tariff = [PriceBlock(0.31, "EUR", None, AT), PriceBlock(0.12, "EUR", AT, None)]
    await store.save_prices("depot", "operator", tariff)
    assert await store.prices() == [("depot", "operator", tariff)]
    assert await store.delete("depot")  # a site deleted takes its limits and prices
    assert await store.timelines() == [] and await store.prices() == []
