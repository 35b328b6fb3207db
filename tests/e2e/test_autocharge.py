"""Autocharge end to end: a car's MAC address, registered to a driver over the REST API,
authorizes and starts charging at a station of the `ocpp` package (1.6 idTag ``VID:...``,
2.0.1 IdToken of type MacAddress)."""

from __future__ import annotations

from api_client import Api
from stations import Driver, connect

from chargegrid.bootstrap import App

CAR = "VID:0011223344AA"


async def _register_car(api: Api) -> None:
    made = await api.post(
        "/tokens",
        {"value": "00:11:22:33:44:aa", "kind": "MacAddress", "owner": "driver-7"},
        201,
    )
    assert (made["value"], made["kind"], made["owner"]) == (CAR, "MacAddress", "driver-7")
    refused = await api.post("/tokens", {"value": "VID:12", "kind": "MacAddress"}, 422)
    assert "not a MAC address" in refused["detail"]
    await api.post("/tokens", {"value": "0011223344AA", "kind": "MacAddress"}, 409)  # same car


async def test_autocharge_with_a_16_station(node: App, api: Api) -> None:
    await _register_car(api)
    async with connect(node.server.port, "CS-AC16", "1.6") as cp:
        station = Driver(cp, "1.6")
        assert await station.boot() == "Accepted"
        assert await station.authorize(CAR) == "Accepted"
        assert await station.authorize("vid:0011223344aa") == "Accepted"  # same car
        assert await station.authorize("VID:AABBCCDDEEFF") == "Invalid"  # nobody's car
        assert await station.authorize("VID:not-a-mac") == "Invalid"
        tx_id, status = await station.start("VID:0011223344aa", 1000)
        assert status == "Accepted"
        assert await station.authorize(CAR) == "ConcurrentTx"  # the car is charging
        await station.stop(tx_id, 8500, CAR)
        await api.post(f"/tokens/{CAR}/block", None)
        assert await station.authorize(CAR) == "Blocked"
    page = await api.get("/transactions", params={"id_token": CAR})
    [tx] = page["items"]
    assert (tx["station_id"], tx["id_token"], tx["energy_wh"]) == ("CS-AC16", CAR, "7500")


async def test_autocharge_with_a_201_station(node: App, api: Api) -> None:
    await _register_car(api)
    async with connect(node.server.port, "CS-AC201", "2.0.1") as cp:
        station = Driver(cp, "2.0.1")
        station.token_type = "MacAddress"
        assert await station.boot() == "Accepted"
        assert await station.authorize("00:11:22:33:44:AA") == "Accepted"
        assert await station.authorize("0011223344AA") == "Accepted"
        assert await station.authorize("AABBCCDDEEFF") == "Unknown"
        _, status = await station.start("00-11-22-33-44-AA", 2000, tx_id="ac-1")
        assert status == "Accepted"
    [tx] = (await api.get("/transactions", params={"station_id": "CS-AC201"}))["items"]
    assert tx["id_token"] == CAR
