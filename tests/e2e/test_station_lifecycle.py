"""A station built on the `ocpp` package drives chargegrid over a real WebSocket, both versions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from stations import Driver, connect

from chargegrid.bootstrap import App, build
from chargegrid.domain.model import IdToken, Registration, TransactionState
from chargegrid.entrypoints.settings import Settings


async def wait_for(predicate, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_boot_heartbeat_and_status(app: App, version: str) -> None:
    async with connect(app.server.port, "CS-1", version) as cp:
        station = Driver(cp, version)
        assert await station.boot() == "Accepted"
        assert (await station.heartbeat()).endswith("Z")
        await station.status(1, "Available")
        stored = await app.store.get_station("CS-1")
        assert stored is not None and stored.online and stored.ocpp_version == version
        assert stored.vendor == "ACME" and stored.firmware_version in ("1.2.3", "2.0.0")
        statuses = await app.store.connector_statuses("CS-1")
        assert [s.status for s in statuses] == ["Available"]

    async def offline() -> bool:
        s = await app.store.get_station("CS-1")
        return s is not None and not s.online

    await wait_for(offline)


@pytest.mark.parametrize("policy", ["pending", "reject"])
async def test_unknown_station_policy(settings: Settings, version: str, policy: str) -> None:
    node = await build(Settings(**{**settings.__dict__, "unknown_stations": policy}))
    await node.start()
    try:
        async with connect(node.server.port, "CS-NEW", version) as cp:
            station = Driver(cp, version)
            expected = "Pending" if policy == "pending" else "Rejected"
            assert await station.boot() == expected
            # Until accepted, anything but boot is refused with SecurityError.
            with pytest.raises(Exception, match=r"SecurityError|Security"):
                await cp.call(
                    __import__(
                        "ocpp.v16.call" if version == "1.6" else "ocpp.v201.call",
                        fromlist=["Authorize"],
                    ).Authorize(
                        **(
                            {"id_tag": "X"}
                            if version == "1.6"
                            else {"id_token": {"id_token": "X", "type": "ISO14443"}}
                        )
                    ),
                    suppress=False,
                )
            if policy == "pending":
                await node.central.set_registration("CS-NEW", Registration.ACCEPTED)
                assert await station.boot() == "Accepted"
    finally:
        await node.stop()


async def test_authorization_outcomes(app: App, version: str) -> None:
    now = datetime.now(UTC)
    await app.store.save_token(IdToken("GOOD"))
    await app.store.save_token(IdToken("BLOCKED", blocked=True))
    await app.store.save_token(IdToken("OLD", expires_at=now - timedelta(days=1)))
    await app.store.save_token(IdToken("BUSY"))
    unknown = "Invalid" if version == "1.6" else "Unknown"
    async with connect(app.server.port, "CS-A", version) as cp:
        station = Driver(cp, version)
        await station.boot()
        assert await station.authorize("GOOD") == "Accepted"
        assert await station.authorize("NOBODY") == unknown
        assert await station.authorize("BLOCKED") == "Blocked"
        assert await station.authorize("OLD") == "Expired"
        await station.start("BUSY", 0)
        assert await station.authorize("BUSY") == "ConcurrentTx"


async def test_full_transaction_with_meter_values(app: App, version: str) -> None:
    await app.store.save_token(IdToken("DRIVER-1"))
    async with connect(app.server.port, "CS-T", version) as cp:
        station = Driver(cp, version)
        await station.boot()
        await station.status(1, "Charging" if version == "1.6" else "Occupied")
        tx_id, status = await station.start("DRIVER-1", 1000)
        assert status == "Accepted"
        await station.meter(tx_id, 2500)
        await station.meter(tx_id, 4000)
        await station.stop(tx_id, 5000, tag="DRIVER-1")
    tx = await app.store.find_transaction("CS-T", tx_id)
    assert tx is not None
    assert tx.state is TransactionState.ENDED
    assert tx.id_token == "DRIVER-1"
    assert tx.meter_start_wh == Decimal(1000) and tx.meter_stop_wh == Decimal(5000)
    assert tx.energy_wh == Decimal(4000)
    assert tx.stop_reason == "EVDisconnected"
    readings = await app.store.meter_values(tx.id)
    measurands = {v.measurand for r in readings for v in r.values}
    assert {"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import"} <= measurands
    phases = {v.phase for r in readings for v in r.values if v.measurand == "Current.Import"}
    assert phases == {"L1"}


async def test_start_resent_after_lost_answer_gets_the_same_transaction(app: App) -> None:
    from ocpp.v16 import call

    async with connect(app.server.port, "CS-R", "1.6") as cp:
        await Driver(cp, "1.6").boot()
        request = call.StartTransaction(
            connector_id=1, id_tag="T", meter_start=7, timestamp="2026-01-01T10:00:00Z"
        )
        first = await cp.call(request)
        again = await cp.call(request)
        assert first.transaction_id == again.transaction_id
    assert len(await app.store.list_transactions("CS-R")) == 1


async def test_reconnect_mid_transaction_with_queued_messages(app: App, version: str) -> None:
    await app.store.save_token(IdToken("DRIVER-2"))
    async with connect(app.server.port, "CS-Q", version) as cp:
        station = Driver(cp, version)
        await station.boot()
        tx_id, _ = await station.start("DRIVER-2", 100)
    # The station was offline for a while and now sends what it queued, in order.
    async with connect(app.server.port, "CS-Q", version) as cp:
        station = Driver(cp, version)
        station._seq = 5
        await station.meter(tx_id, 600)
        await station.meter(tx_id, 900)
        await station.stop(tx_id, 1200, tag="DRIVER-2")
    tx = await app.store.find_transaction("CS-Q", tx_id)
    assert tx is not None and tx.state is TransactionState.ENDED and tx.energy_wh == Decimal(1100)
    assert len(await app.store.meter_values(tx.id)) >= 2  # both queued MeterValues kept


async def test_reconnect_replaces_the_stale_connection(app: App, version: str) -> None:
    async with connect(app.server.port, "CS-S", version) as first:
        await Driver(first, version).boot()
        async with connect(app.server.port, "CS-S", version) as second:
            await asyncio.wait_for(first._connection.wait_closed(), 3)  # replaced, closed by us
            await asyncio.sleep(0.1)  # the server's hooks for both connections have run
            # the replaced connection's end does not mark the station offline
            stored = await app.store.get_station("CS-S")
            assert stored is not None and stored.online
            await Driver(second, version).heartbeat()
            assert app.server.get("CS-S") is not None
            assert app.server.connections["CS-S"].ctx is not None
            result = await app.commands.send("CS-S", "ClearCache", {})
            assert result.response["status"] == "Accepted"
            assert [a for a, _ in second.received] == ["ClearCache"]
            assert first.received == []
