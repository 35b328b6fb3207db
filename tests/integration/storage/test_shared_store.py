"""A store shared by the nodes of a cluster keeps in memory the transactions of the stations
its node holds only: a late handler of a connection that moved to another node writes to the
database, and leaves no copy here that would hide what the other node writes next."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from msgspec.structs import replace

from chargegrid.adapters.storage.store import open_store
from chargegrid.domain.model import Registration, Station, TransactionState
from chargegrid.service.ports import NewTransaction

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_station_not_held_here_leaves_no_transaction_in_memory(sql_url: str) -> None:
    url = sql_url
    here, there = await open_store(url, shared=True), await open_store(url, shared=True)
    try:
        await there.adopt("CS1")  # the station moved to the other node
        # a late StartTransaction and MeterValues of its old connection, handled here
        tx = await here.start_transaction(
            NewTransaction("CS1", None, 1, 1, "TAG1", T0, Decimal("1000"))
        )
        await here.update_transaction(replace(tx, meter_stop_wh=Decimal("1100")))
        await there.adopt("CS1")  # as when its next message arrives there: read again
        stopped = replace(
            tx, state=TransactionState.ENDED, stopped_at=T0, meter_stop_wh=Decimal("1200")
        )
        await there.update_transaction(stopped)
        seen = await here.get_transaction(tx.id)
        assert seen is not None and seen.state is TransactionState.ENDED
        assert not await here.has_active_transaction("TAG1")
    finally:
        await here.close()
        await there.close()


async def test_many_stations_are_adopted_in_one_go(sql_url: str) -> None:
    """What a node keeps of the stations that connect to it, read for many at once: each one's
    active transactions and its latest ended ones (16), and its row."""
    writer, node = await open_store(sql_url, shared=True), await open_store(sql_url, shared=True)
    try:
        await writer.save_station(Station("CS1", registration=Registration.ACCEPTED))
        ended: dict[str, list[int]] = {"CS1": [], "CS2": []}
        for n in range(20):
            for station_id in ("CS1", "CS2"):
                new = NewTransaction(station_id, None, 1, 1, f"T{n}", T0, Decimal(n))
                tx = await writer.start_transaction(new)
                await writer.update_transaction(
                    replace(tx, state=TransactionState.ENDED, stopped_at=T0)
                )
                ended[station_id].append(tx.id)
        running = await writer.start_transaction(
            NewTransaction("CS2", None, 2, 1, "RUN", T0, Decimal(5))
        )
        await node.adopt_many(["CS1", "CS2", "CS3"])
        assert [t.id for t in await node.active_transactions("CS2")] == [running.id]
        assert await node.active_transactions("CS1") == []
        assert await node.has_active_transaction("RUN")
        for station_id, ids in ended.items():
            for tx_id in ids[-16:]:  # kept: a late meter value or resent stop finds them
                found = await node.find_same_start(
                    NewTransaction(
                        station_id,
                        None,
                        1,
                        1,
                        f"T{ids.index(tx_id)}",
                        T0,
                        Decimal(ids.index(tx_id)),
                    )
                )
                assert found is not None and found.id == tx_id
            oldest = ids.index(ids[0])
            assert (
                await node.find_same_start(
                    NewTransaction(station_id, None, 1, 1, f"T{oldest}", T0, Decimal(oldest))
                )
                is None
            )
        station = await node.get_station("CS1")
        assert station is not None and station.registration is Registration.ACCEPTED
        assert await node.get_station("CS3") is None
    finally:
        await writer.close()
        await node.close()
