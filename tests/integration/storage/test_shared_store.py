"""A store shared by the nodes of a cluster keeps in memory the transactions of the stations
its node holds only: a late handler of a connection that moved to another node writes to the
database, and leaves no copy here that would hide what the other node writes next."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from msgspec.structs import replace

from chargegrid.adapters.storage.store import open_store
from chargegrid.domain.model import TransactionState
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
