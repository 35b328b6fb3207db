"""The REST API over real HTTP, with stations built on the `ocpp` package connected where needed.

Every endpoint under ``/api/v1`` is driven through httpx against a running node (the OCPP server
and the API in one event loop), on SQLite and on PostgreSQL: stations, commands, transactions,
id tokens, API tokens, and who may call what (enumerated from the OpenAPI document).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import logging
import re
import socket
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest
import structlog
from api_client import (
    ADMIN_TOKEN,
    API,
    Api,
    connect_awkward,
    items,
    wait_for,
)
from litestar.routes import HTTPRoute
from ocpp.charge_point import camel_to_snake_case
from ocpp.v16 import call as call16
from stations import Driver, connect
from websockets.exceptions import InvalidStatus

from chargegrid.bootstrap import App, build
from chargegrid.entrypoints import logs
from chargegrid.entrypoints.api.app import create_api
from chargegrid.entrypoints.api.context import ApiContext
from chargegrid.entrypoints.settings import Settings
from chargegrid.protocols.ocpp16.dialect import DIALECT as OCPP16
from chargegrid.protocols.ocpp201.dialect import DIALECT as OCPP201
from chargegrid.service.firmware import Firmware
from chargegrid.service.ports import StorageError

PASSWORD = "a-sixteen-char-pw!"
DIALECTS = {"1.6": OCPP16, "2.0.1": OCPP201}
PENDING_NODE = pytest.mark.parametrize(
    "api_settings", [{"unknown_stations": "pending"}], indirect=True, ids=["pending"]
)


async def new_token(api: Api, role: str, name: str | None = None) -> tuple[str, dict[str, Any]]:
    created = await api.post("/api-tokens", {"name": name or role, "role": role}, expect=201)
    return created["token"], created["api_token"]


async def register(api: Api, *station_ids: str) -> None:
    """Register stations before they connect, as an operator does.

    (A station unknown until its first boot can hit the race of
    test_a_station_that_boots_at_once_stays_known; the tests that do not need an unknown
    station stay clear of it.)
    """
    for station_id in station_ids:
        await api.post("/stations", {"id": station_id}, expect=201)


def tx_ids(listed: list[dict[str, Any]]) -> list[str]:
    return [t["station_tx_id"] for t in listed]


# --- stations ----------------------------------------------------------------------------------


async def test_station_registered_read_and_refused(api: Api) -> None:
    created = await api.post("/stations", {"id": "CS-REG", "lenient": ["enum-case"]}, expect=201)
    assert created == {
        "id": "CS-REG",
        "registration": "Accepted",
        "connected": False,
        "ocpp_version": None,
        "vendor": None,
        "model": None,
        "serial_number": None,
        "firmware_version": None,
        "boot_reason": None,
        "last_seen": None,
        "password_set": False,
        "password_pending": False,
        "security_profile": 0,
        "lenient": ["enum-case"],
        "latitude": None,
        "longitude": None,
        "location": None,
    }
    assert await api.get("/stations/CS-REG") == {
        "station": created,
        "connectors": [],
        "active_transactions": [],
    }
    conflict = await api.post("/stations", {"id": "CS-REG"}, expect=409)
    assert conflict == {"status_code": 409, "detail": "station 'CS-REG' exists"}

    pending = await api.post(
        "/stations", {"id": "CS-PW", "registration": "Pending", "password": PASSWORD}, expect=201
    )
    assert (pending["registration"], pending["password_set"]) == ("Pending", True)

    invalid: list[Any] = [
        {},
        {"id": ""},
        {"id": "CS 1"},
        {"id": "CS/1"},
        {"id": "C" * 49},
        {"id": "CS-X", "registration": "Maybe"},
        {"id": "CS-X", "password": "too-short"},
        {"id": "CS-X", "password": "p" * 41},
        {"id": "CS-X", "lenient": ["anything-goes"]},
        {"id": "CS-X", "colour": "red"},
        ["CS-X"],
    ]
    for body in invalid:
        refused = await api.post("/stations", body, expect=400)
        assert refused["status_code"] == 400 and refused["detail"], body
    malformed = await api.request(
        "POST", "/stations", content=b'{"id": ', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    # The OCPP password rules beyond the length: printable ASCII. Refused, and nothing is created.
    refused = await api.post(
        "/stations", {"id": "CS-X", "password": "pässwörd-sixteen"}, expect=422
    )
    assert "printable ASCII" in refused["detail"]
    await api.get("/stations/CS-X", expect=404)
    listed = items(await api.pages("/stations"))
    assert [s["id"] for s in listed] == ["CS-PW", "CS-REG"]


async def test_unknown_station_is_404_everywhere(api: Api) -> None:
    for path in (
        "/stations/NOPE",
        "/stations/NOPE/status-history",
        "/stations/NOPE/configuration",
        "/stations/NOPE/security-events",
        "/stations/NOPE/reports",
        "/stations/NOPE/command-log",
        "/stations/NOPE/operations",
    ):
        assert (await api.get(path, expect=404))["status_code"] == 404
    await api.post("/stations/NOPE/accept", expect=404)
    await api.post("/stations/NOPE/reject", expect=404)
    await api.patch("/stations/NOPE", {"lenient": []}, expect=404)
    await api.delete("/stations/NOPE", expect=404)
    await api.post("/stations/NOPE/commands/Reset", {"type": "Soft"}, expect=404)
    assert (await api.get("/stations"))["items"] == []  # none was created on the way


async def test_station_list_pages_sorts_and_filters(api: Api) -> None:
    ids = [f"CS-L{i:02}" for i in range(7)]
    registrations = ["Accepted", "Pending", "Rejected"]
    for i, station_id in enumerate(reversed(ids)):  # created out of order
        await api.post(
            "/stations", {"id": station_id, "registration": registrations[i % 3]}, expect=201
        )
    pages = await api.pages("/stations", limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [s["id"] for s in items(pages)] == ids
    newest = await api.pages("/stations", limit=3, sort="-id")
    assert [len(p) for p in newest] == [3, 3, 1]
    assert [s["id"] for s in items(newest)] == ids[::-1]
    exact = await api.pages("/stations", limit=7)
    assert [len(p) for p in exact] == [7]  # no empty last page

    by_registration = {
        r: [s["id"] for s in items(await api.pages("/stations", registration=r, limit=2))]
        for r in registrations
    }
    assert by_registration == {
        "Accepted": ["CS-L00", "CS-L03", "CS-L06"],
        "Pending": ["CS-L02", "CS-L05"],
        "Rejected": ["CS-L01", "CS-L04"],
    }
    pending_desc = await api.pages("/stations", registration="Pending", sort="-id", limit=1)
    assert [s["id"] for s in items(pending_desc)] == ["CS-L05", "CS-L02"]
    assert len(items(await api.pages("/stations", online="false"))) == 7
    assert (await api.get("/stations", params={"online": "true"}))["items"] == []

    first = await api.get("/stations", params={"limit": 2})
    assert first["next_cursor"]
    for params in (
        {"sort": "vendor"},
        {"sort": "-registration"},
        {"limit": 0},
        {"limit": 501},
        {"limit": "many"},
        {"cursor": "not-a-cursor"},
        {"cursor": first["next_cursor"], "sort": "-id"},  # made for another sort
        {"online": "perhaps"},
    ):
        refused = await api.get("/stations", params=params, expect=400)
        assert refused["status_code"] == 400, params


@PENDING_NODE
async def test_pending_station_accepted_then_rejected_through_the_api(
    node: App, api: Api, version: str
) -> None:
    async with connect(node.server.port, "CS-NEW", version) as cp:
        station = Driver(cp, version)
        assert await station.boot() == "Pending"

        async def known() -> bool:
            return (await api.request("GET", "/stations/CS-NEW")).status_code == 200

        await wait_for(known, timeout=7)
        pending = items(await api.pages("/stations", registration="Pending"))
        assert [(s["id"], s["connected"], s["ocpp_version"], s["vendor"]) for s in pending] == [
            ("CS-NEW", True, version, "ACME")
        ]
        accepted = await api.post("/stations/CS-NEW/accept")
        assert (accepted["id"], accepted["registration"]) == ("CS-NEW", "Accepted")
        assert await station.boot() == "Accepted"
        assert (await api.get("/stations", params={"registration": "Pending"}))["items"] == []
        rejected = await api.post("/stations/CS-NEW/reject")
        assert rejected["registration"] == "Rejected"
        assert await station.boot() == "Rejected"
        # A PATCH of the registration is the same decision.
        patched = await api.patch("/stations/CS-NEW", {"registration": "Accepted"})
        assert patched["registration"] == "Accepted"
        assert await station.boot() == "Accepted"


# A station's first read by the connection hook may come back after its BootNotification was
# handled: the cache must keep the booted station, not what the late read found (store.py).
async def test_a_station_that_boots_at_once_stays_known(
    node: App, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: Any = node.store
    read = store._all
    slow = [True]

    async def slow_first_station_read(query: Any) -> Any:
        if slow and "FROM stations" in str(query):
            slow.clear()
            found = await read(query)  # read now, while the station is unknown...
            await asyncio.sleep(0.3)  # ...and come back late, as a busy database does
            return found
        return await read(query)

    monkeypatch.setattr(store, "_all", slow_first_station_read)
    async with connect(node.server.port, "CS-RACE", "1.6") as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
        await asyncio.sleep(0.4)  # the connection's own read of the station is back
        assert not slow
        await api.get("/stations/CS-RACE")
        assert (await cp.call(call16.Heartbeat(), suppress=False)).current_time


async def test_station_patch_password_and_lenient(node: App, api: Api) -> None:
    await api.post("/stations", {"id": "CS-P"}, expect=201)
    await api.patch("/stations/CS-P", {"password": "too-short"}, expect=400)
    await api.patch("/stations/CS-P", {"password": "p" * 41}, expect=400)
    refused = await api.patch("/stations/CS-P", {"password": "pässwörd-sixteen"}, expect=422)
    assert "printable ASCII" in refused["detail"]
    # A refused PATCH changes nothing, not even the fields that were valid.
    await api.patch(
        "/stations/CS-P",
        {"registration": "Rejected", "lenient": ["enum-case"], "password": "with spaces 16 chars"},
        expect=422,
    )
    unchanged = (await api.get("/stations/CS-P"))["station"]
    assert (unchanged["registration"], unchanged["lenient"], unchanged["password_set"]) == (
        "Accepted",
        [],
        False,
    )
    await api.patch("/stations/CS-P", {"lenient": ["sloppy"]}, expect=400)
    await api.patch("/stations/CS-P", {"id": "CS-Q"}, expect=400)
    await api.patch("/stations/NOPE", {"password": PASSWORD}, expect=404)

    with_password = await api.patch("/stations/CS-P", {"password": PASSWORD})
    assert with_password["password_set"] is True
    # The station must now present it (security profile 1).
    with pytest.raises(InvalidStatus) as caught:
        async with connect(node.server.port, "CS-P", "1.6"):
            pass
    assert caught.value.response.status_code == 401
    async with connect(node.server.port, "CS-P", "1.6", password=PASSWORD) as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"

    lenient = await api.patch("/stations/CS-P", {"lenient": ["numbers-as-strings", "enum-case"]})
    assert lenient["lenient"] == ["enum-case", "numbers-as-strings"]
    assert lenient["password_set"] is True  # what is not given stays
    assert (await api.patch("/stations/CS-P", {}))["lenient"] == lenient["lenient"]
    cleared = await api.patch("/stations/CS-P", {"password": None, "lenient": []})
    assert (cleared["password_set"], cleared["lenient"]) == (False, [])
    async with connect(node.server.port, "CS-P", "1.6") as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"


async def test_station_deleted(api: Api) -> None:
    await api.post("/stations", {"id": "CS-D"}, expect=201)
    await api.post("/stations", {"id": "CS-KEEP"}, expect=201)
    deleted = await api.delete("/stations/CS-D")
    assert deleted.content == b""
    await api.get("/stations/CS-D", expect=404)
    await api.get("/stations/CS-D/command-log", expect=404)
    await api.delete("/stations/CS-D", expect=404)
    assert [s["id"] for s in items(await api.pages("/stations"))] == ["CS-KEEP"]
    again = await api.post("/stations", {"id": "CS-D", "registration": "Pending"}, expect=201)
    assert again["registration"] == "Pending"


async def test_station_place_for_the_map(node: App, api: Api) -> None:
    where = {"latitude": 52.37, "longitude": 4.895, "location": "Dam 1, Amsterdam"}
    created = await api.post("/stations", {"id": "CS-MAP", **where}, expect=201)
    assert {k: created[k] for k in where} == where
    moved = await api.patch("/stations/CS-MAP", {"longitude": -0.1276, "location": None})
    assert (moved["latitude"], moved["longitude"], moved["location"]) == (52.37, -0.1276, None)
    for bad in ({"latitude": 90.5}, {"longitude": -181}, {"location": "x" * 201}):
        refused = await api.patch("/stations/CS-MAP", bad, expect=400)
        assert next(iter(bad)) in json.dumps(refused)
    async with connect(node.server.port, "CS-MAP", "1.6") as cp:
        await Driver(cp, "1.6").boot()  # a boot keeps what the operator set
    station = (await api.get("/stations/CS-MAP"))["station"]
    assert (station["latitude"], station["vendor"]) == (52.37, "ACME")


async def test_live_station_connectors_and_status_history(
    node: App, api: Api, version: str
) -> None:
    busy = "Preparing" if version == "1.6" else "Occupied"
    await register(api, "CS-LIVE")
    async with connect(node.server.port, "CS-LIVE", version) as cp:
        station = Driver(cp, version)
        await station.boot()
        await station.status(1, "Available")
        await station.status(1, busy)
        await station.status(2, "Unavailable")
        detail = await api.get("/stations/CS-LIVE")
        live = detail["station"]
        assert (live["connected"], live["ocpp_version"], live["vendor"]) == (True, version, "ACME")
        assert live["model"] == ("Wallbox-1" if version == "1.6" else "Wallbox-2")
        assert live["last_seen"] is not None
        connectors = [(c["evse_id"], c["connector_id"], c["status"]) for c in detail["connectors"]]
        # 1.6 has no EVSEs: its connector N is EVSE N, connector N.
        second = (2, 2) if version == "1.6" else (2, 1)
        assert connectors == [(1, 1, busy), (*second, "Unavailable")]
        history = await api.get("/stations/CS-LIVE/status-history")
        assert [(c["evse_id"], c["status"]) for c in history] == [
            (2, "Unavailable"),
            (1, busy),
            (1, "Available"),
        ]
        assert len(await api.get("/stations/CS-LIVE/status-history", params={"limit": 1})) == 1
        await api.get("/stations/CS-LIVE/status-history", params={"limit": 0}, expect=400)
        listed = items(await api.pages("/stations", ocpp_version=version, vendor="ACME"))
        assert [(s["id"], s["connected"]) for s in listed] == [("CS-LIVE", True)]
        assert [s["id"] for s in items(await api.pages("/stations", online="true"))] == ["CS-LIVE"]
        assert (await api.get("/stations", params={"vendor": "Other"}))["items"] == []
        assert await api.get("/stations/CS-LIVE/security-events") == []
        assert await api.get("/stations/CS-LIVE/reports") == []

    async def disconnected() -> bool:
        return not (await api.get("/stations/CS-LIVE"))["station"]["connected"]

    await wait_for(disconnected)
    await api.get("/stations/CS-LIVE/operations", expect=409)


# --- commands ----------------------------------------------------------------------------------


async def test_commands_reach_the_station_and_are_logged(node: App, api: Api, version: str) -> None:
    heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    power = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
    await register(api, "CS-CMD")
    async with connect(node.server.port, "CS-CMD", version) as cp:
        await Driver(cp, version).boot()
        operations = await api.get("/stations/CS-CMD/operations")
        assert operations == sorted(DIALECTS[version].csms_actions)
        assert "Reset" in operations
        assert ("GetConfiguration" in operations) is (version == "1.6")
        assert ("GetVariables" in operations) is (version == "2.0.1")

        if version == "1.6":
            sent: list[tuple[str, dict[str, Any]]] = [
                ("GetConfiguration", {}),
                ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "600"}),
                ("Reset", {"type": "Soft"}),
            ]
            answers = [
                {
                    "configurationKey": [
                        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                        {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
                    ]
                },
                {"status": "Accepted"},
                {"status": "Accepted"},
            ]
        else:
            sent = [
                ("GetVariables", {"getVariableData": [heartbeat, power]}),
                ("SetVariables", {"setVariableData": [{**heartbeat, "attributeValue": "600"}]}),
                ("Reset", {"type": "OnIdle"}),
            ]
            answers = [
                {
                    "getVariableResult": [
                        {**heartbeat, "attributeStatus": "Accepted", "attributeValue": "42"},
                        {**power, "attributeStatus": "Accepted", "attributeValue": "42"},
                    ]
                },
                {"setVariableResult": [{**heartbeat, "attributeStatus": "Accepted"}]},
                {"status": "Accepted"},
            ]
        configurations = []
        for (operation, payload), answer in zip(sent, answers, strict=True):
            result = await api.post(f"/stations/CS-CMD/commands/{operation}", payload)
            assert result == {"operation": operation, "request": payload, "response": answer}
            configurations.append(await api.get("/stations/CS-CMD/configuration"))
        assert cp.received == [(op, camel_to_snake_case(payload)) for op, payload in sent]

    read, written, _ = configurations
    if version == "1.6":
        assert {(c["variable"], c["value"], c["readonly"]) for c in read} == {
            ("HeartbeatInterval", "300", False),
            ("NumberOfConnectors", "2", True),
        }
        assert {c["variable"]: c["value"] for c in written} == {
            "HeartbeatInterval": "600",
            "NumberOfConnectors": "2",
        }
    else:
        assert {(c["component"], c["variable"], c["value"], c["evse_id"]) for c in read} == {
            ("OCPPCommCtrlr", "HeartbeatInterval", "42", None),
            ("EVSE", "Power", "42", 1),
        }
        assert {(c["component"], c["variable"]): c["value"] for c in written} == {
            ("OCPPCommCtrlr", "HeartbeatInterval"): "600",
            ("EVSE", "Power"): "42",
        }
    assert all(c["station_id"] == "CS-CMD" for c in read)
    log = await api.get("/stations/CS-CMD/command-log")
    assert [(c["action"], c["outcome"], c["request"], c["response"]) for c in log] == [
        (op, "answered", payload, answer)
        for (op, payload), answer in reversed(list(zip(sent, answers, strict=True)))
    ]
    assert all(c["answered_at"] >= c["sent_at"] for c in log)
    assert len(await api.get("/stations/CS-CMD/command-log", params={"limit": 2})) == 2


async def test_command_errors(node: App, api: Api, version: str) -> None:
    reset = {"type": "Soft"} if version == "1.6" else {"type": "Immediate"}
    await api.post("/stations/NOWHERE/commands/Reset", reset, expect=404)
    await api.post("/stations", {"id": "CS-OFF"}, expect=201)
    offline = await api.post("/stations/CS-OFF/commands/Reset", reset, expect=409)
    assert "CS-OFF" in offline["detail"] and "not connected" in offline["detail"]
    await api.get("/stations/CS-OFF/operations", expect=409)

    await register(api, "CS-AWK")
    async with connect_awkward(node.server.port, "CS-AWK", version) as cp:
        await Driver(cp, version).boot()
        url = "/stations/CS-AWK/commands"
        missing = await api.post(f"{url}/Reset", {}, expect=422)
        assert missing["extra"]["errors"] and all(
            isinstance(e, str) for e in missing["extra"]["errors"]
        )
        assert "type" in missing["extra"]["errors"][0]
        wrong = await api.post(f"{url}/Reset", {"type": "Sideways"}, expect=422)
        assert "Sideways" in wrong["extra"]["errors"][0]
        unknown = await api.post(f"{url}/NoSuchOperation", {}, expect=422)
        assert unknown["extra"]["errors"] == [unknown["detail"]]
        station_side = await api.post(f"{url}/BootNotification", {}, expect=422)
        assert "not an operation a CSMS sends" in station_side["detail"]
        await api.post(f"{url}/Reset", reset, params={"timeout": 0}, expect=400)
        await api.post(f"{url}/Reset", reset, params={"timeout": 301}, expect=400)
        await api.post(f"{url}/Reset", [reset], expect=400)

        loop = asyncio.get_running_loop()
        began = loop.time()
        slow = {"vendorId": "com.acme", "messageId": "slow"}
        late = await api.post(f"{url}/DataTransfer", slow, params={"timeout": 0.3}, expect=504)
        assert late["status_code"] == 504
        assert 0.25 <= loop.time() - began < 0.75  # gave up on time, not when the reply came
        quick = await api.post(f"{url}/DataTransfer", {"vendorId": "com.acme", "messageId": "q"})
        assert quick["response"] == {"status": "Accepted", "data": "q"}

        refused = await api.post(f"{url}/Reset", reset, expect=502)
        assert refused["extra"] == {
            "code": "NotSupported",
            "description": "Reset is disabled on this unit",
            "details": {"reason": "maintenance"},
        }
        assert [action for action, _ in cp.received] == ["DataTransfer", "DataTransfer", "Reset"]

    log = await api.get("/stations/CS-AWK/command-log")
    assert [(c["action"], c["outcome"], c["error_code"]) for c in log] == [
        ("Reset", "error", "NotSupported"),
        ("DataTransfer", "answered", None),
        ("DataTransfer", "timeout", None),
        ("BootNotification", "invalid", None),
        ("NoSuchOperation", "invalid", None),
        ("Reset", "invalid", None),
        ("Reset", "invalid", None),
    ]
    # "Every outcome is also recorded", the refusal of an offline station's command too.
    offline_log = await api.get("/stations/CS-OFF/command-log")
    assert [(c["action"], c["outcome"], c["request"]) for c in offline_log] == [
        ("Reset", "offline", reset)
    ]


# --- transactions ------------------------------------------------------------------------------


async def test_transactions_listed_filtered_paged_and_exported(
    node: App, api: Api, version: str
) -> None:
    for value in ("DRIVER-1", "DRIVER-2"):
        await api.post("/tokens", {"value": value}, expect=201)
    await register(api, "CS-TX", "CS-TX2")
    port = node.server.port
    async with connect(port, "CS-TX", version) as cp, connect(port, "CS-TX2", version) as cp2:
        one, two = Driver(cp, version), Driver(cp2, version)
        await one.boot()
        await two.boot()
        first, status = await one.start("DRIVER-1", 1000, tx_id="tx-a")
        assert status == "Accepted"
        await one.meter(first, 2500)
        await one.meter(first, 4000)
        await one.stop(first, 5000, tag="DRIVER-1")
        second, _ = await two.start("DRIVER-2", 0, tx_id="tx-b")
        await two.stop(second, 1500, tag="DRIVER-2")
        third, _ = await one.start("DRIVER-1", 5000, tx_id="tx-c")
        await one.stop(third, 6000, tag="DRIVER-1")
        active, _ = await one.start("DRIVER-2", 6000, connector=2, tx_id="tx-d")
        order = [first, second, third, active]

        listed = items(await api.pages("/transactions", limit=3))  # newest first by default
        assert tx_ids(listed) == order[::-1]
        by_tx = {t["station_tx_id"]: t for t in listed}
        a, b, _, d = (by_tx[t] for t in order)
        energy = {k: Decimal(a[k]) for k in ("meter_start_wh", "meter_stop_wh", "energy_wh")}
        assert energy == {"meter_start_wh": 1000, "meter_stop_wh": 5000, "energy_wh": 4000}
        assert a | {"id": 0, "started_at": "", "stopped_at": "", **dict.fromkeys(energy, "")} == {
            "id": 0,
            "station_id": "CS-TX",
            "station_tx_id": first,
            "evse_id": 1,
            "connector_id": 1,
            "id_token": "DRIVER-1",
            "state": "Ended",
            "started_at": "",
            "stopped_at": "",
            "meter_start_wh": "",
            "meter_stop_wh": "",
            "energy_wh": "",
            "stop_reason": "EVDisconnected",
            "reservation_id": None,
        }
        assert a["started_at"] < a["stopped_at"] <= b["started_at"]
        assert (d["state"], d["stopped_at"], d["meter_stop_wh"], d["evse_id"]) == (
            "Active",
            None,
            None,
            2,
        )
        station = await api.get("/stations/CS-TX")
        assert station["active_transactions"] == [d["id"]]

        # Paging in every order.
        oldest = await api.pages("/transactions", limit=1, sort="started_at")
        assert [len(p) for p in oldest] == [1, 1, 1, 1]
        assert tx_ids(items(oldest)) == order
        newest = await api.pages("/transactions", limit=3, sort="-started_at")
        assert [len(p) for p in newest] == [3, 1]
        assert tx_ids(items(newest)) == order[::-1]
        ids = sorted(t["id"] for t in listed)
        assert [t["id"] for t in items(await api.pages("/transactions", limit=2, sort="id"))] == ids
        by_id = await api.pages("/transactions", limit=2, sort="-id")
        assert [t["id"] for t in items(by_id)] == ids[::-1]

        # Filters, alone, together, and while paging.
        async def listing(**params: Any) -> list[str]:
            return tx_ids(items(await api.pages("/transactions", **params)))

        assert await listing(station_id="CS-TX") == [active, third, first]
        assert await listing(station_id="CS-TX2") == [second]
        assert await listing(station_id="CS-NONE") == []
        assert await listing(id_token="DRIVER-2") == [active, second]
        assert await listing(state="Active") == [active]
        assert await listing(state="Ended", limit=1, sort="started_at") == [first, second, third]
        assert await listing(started_from=b["started_at"]) == [active, third, second]
        assert await listing(started_to=b["started_at"]) == [first]
        assert await listing(started_from=b["started_at"], started_to=d["started_at"]) == [
            third,
            second,
        ]
        assert await listing(station_id="CS-TX", id_token="DRIVER-1", state="Ended", limit=1) == [
            third,
            first,
        ]
        for params in (
            {"started_from": "yesterday"},
            {"started_from": "2026-01-01T00:00:00"},  # no offset: which instant?
            {"started_to": "2026-01-01T00:00:00"},
            {"sort": "energy_wh"},
            {"sort": "started_at", "cursor": await _cursor(api, "-started_at")},
        ):
            await api.get("/transactions", params=params, expect=400)

        # One transaction with its meter values.
        detail = await api.get(f"/transactions/{a['id']}")
        assert detail["transaction"] == a
        readings = detail["meter_values"]
        assert readings == sorted(readings, key=lambda r: r["timestamp"])
        registers = {
            Decimal(v["value"])
            for r in readings
            for v in r["values"]
            if v["measurand"] == "Energy.Active.Import.Register"
        }
        assert {Decimal(2500), Decimal(4000)} <= registers
        assert {v["measurand"] for r in readings for v in r["values"]} >= {
            "Energy.Active.Import.Register",
            "Power.Active.Import",
            "Current.Import",
        }
        current = [v for r in readings for v in r["values"] if v["measurand"] == "Current.Import"]
        assert {(v["phase"], v["unit"]) for v in current} == {("L1", "A")}
        live = await api.get(f"/transactions/{d['id']}")
        assert live["transaction"] == d
        await api.get("/transactions/999999", expect=404)
        assert (await api.request("GET", "/transactions/not-a-number")).status_code in (400, 404)

        # The CSV export: same records, oldest first, filters apply.
        export = await api.request("GET", "/transactions/export.csv", expect=200)
        assert export.headers["content-type"].startswith("text/csv")
        assert "attachment" in export.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert [r["station_tx_id"] for r in rows] == order
        assert list(rows[0]) == list(a)
        for row in rows:
            assert row == {
                k: "" if v is None else str(v) for k, v in by_tx[row["station_tx_id"]].items()
            }
        ended = await api.request(
            "GET",
            "/transactions/export.csv",
            params={"station_id": "CS-TX", "state": "Ended"},
            expect=200,
        )
        assert [r["station_tx_id"] for r in csv.DictReader(io.StringIO(ended.text))] == [
            first,
            third,
        ]
        window = await api.request(
            "GET",
            "/transactions/export.csv",
            params={"id_token": "DRIVER-2", "started_from": b["started_at"]},
            expect=200,
        )
        assert [r["id"] for r in csv.DictReader(io.StringIO(window.text))] == [
            str(b["id"]),
            str(d["id"]),
        ]
        naive = await api.request(
            "GET", "/transactions/export.csv", params={"started_to": "2026-01-01T00:00:00"}
        )
        assert naive.status_code == 400 and "offset" in naive.json()["detail"]
        nothing = await api.request(
            "GET", "/transactions/export.csv", params={"station_id": "CS-NONE"}, expect=200
        )
        assert list(csv.reader(io.StringIO(nothing.text))) == [list(a)]


def forged_cursor(*position: Any) -> str:
    """A cursor as paging.py encodes one (URL-safe base64 of JSON, unpadded)."""
    raw = json.dumps(list(position)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_a_forged_cursor_is_refused_not_a_server_error(api: Api) -> None:
    await api.post("/stations", {"id": "CS-C"}, expect=201)
    forged = [
        ("/transactions", "started_at", forged_cursor("started_at", "2026-01-01T00:00:00", 1)),
        ("/transactions", "id", forged_cursor("id", "x", "y")),
        ("/stations", "id", forged_cursor("id", 1, 1)),
        ("/tokens", "value", forged_cursor("value", {"a": 1}, [])),
    ]
    statuses = []
    for path, sort, cursor in forged:
        response = await api.request("GET", path, params={"sort": sort, "cursor": cursor})
        statuses.append(response.status_code)
    assert statuses == [400, 400, 400, 400]


async def _cursor(api: Api, sort: str) -> str:
    page = await api.get("/transactions", params={"limit": 1, "sort": sort})
    cursor: str = page["next_cursor"]
    assert cursor
    return cursor


# --- id tokens ---------------------------------------------------------------------------------


async def test_id_token_lifecycle_seen_by_a_station(node: App, api: Api, version: str) -> None:
    created = await api.post(
        "/tokens", {"value": "CARD-1", "owner": "Ada", "group": "FLEET"}, expect=201
    )
    assert created == {
        "value": "CARD-1",
        "kind": "ISO14443",
        "group": "FLEET",
        "expires_at": None,
        "blocked": False,
        "allow_concurrent": False,
        "owner": "Ada",
    }
    assert await api.get("/tokens/CARD-1") == created
    await api.post("/tokens", {"value": "CARD-1", "owner": "Eve"}, expect=409)
    assert (await api.get("/tokens/CARD-1"))["owner"] == "Ada"
    for body in (
        {},
        {"value": ""},
        {"value": "V" * 256},
        {"value": "CARD-2", "kind": "Magnetic"},
        {"value": "CARD-2", "expires_at": "tomorrow"},
        {"value": "CARD-2", "blocked": "nope"},
        {"value": "CARD-2", "colour": "red"},
    ):
        await api.post("/tokens", body, expect=400)
    await api.get("/tokens/CARD-2", expect=404)

    patched = await api.patch(
        "/tokens/CARD-1",
        {"owner": "Grace", "kind": "KeyCode", "expires_at": "2030-01-01T00:00:00Z"},
    )
    assert patched == created | {
        "owner": "Grace",
        "kind": "KeyCode",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    assert await api.get("/tokens/CARD-1") == patched
    assert (await api.patch("/tokens/CARD-1", {"group": None}))["group"] is None
    await api.patch("/tokens/CARD-1", {"value": "CARD-9"}, expect=400)
    await api.patch("/tokens/CARD-1", {"kind": "Magnetic"}, expect=400)
    await api.patch("/tokens/NOPE", {"owner": "x"}, expect=404)
    for action in ("block", "unblock"):
        await api.post(f"/tokens/NOPE/{action}", expect=404)

    unknown = "Invalid" if version == "1.6" else "Unknown"
    await register(api, "CS-AUTH")
    async with connect(node.server.port, "CS-AUTH", version) as cp:
        station = Driver(cp, version)
        await station.boot()
        assert await station.authorize("CARD-1") == "Accepted"
        blocked = await api.post("/tokens/CARD-1/block")
        assert blocked["blocked"] is True and blocked["owner"] == "Grace"
        assert await station.authorize("CARD-1") == "Blocked"
        assert (await api.get("/tokens/CARD-1"))["blocked"] is True
        assert (await api.post("/tokens/CARD-1/block"))["blocked"] is True  # idempotent
        unblocked = await api.post("/tokens/CARD-1/unblock")
        assert unblocked == patched | {"group": None}
        assert await station.authorize("CARD-1") == "Accepted"
        await api.patch("/tokens/CARD-1", {"expires_at": "2020-01-01T00:00:00Z"})
        assert await station.authorize("CARD-1") == "Expired"
        await api.patch("/tokens/CARD-1", {"expires_at": None})
        assert await station.authorize("CARD-1") == "Accepted"
        deleted = await api.delete("/tokens/CARD-1")
        assert deleted.content == b""
        assert await station.authorize("CARD-1") == unknown
    await api.get("/tokens/CARD-1", expect=404)
    await api.delete("/tokens/CARD-1", expect=404)


async def test_id_token_list_pages_and_filters(api: Api) -> None:
    tokens = [
        {"value": "T-01", "kind": "ISO14443", "group": "G1", "owner": "Ada"},
        {"value": "T-02", "kind": "KeyCode", "group": "G1", "blocked": True},
        {"value": "T-03", "kind": "KeyCode", "owner": "Ada"},
        {"value": "T-04", "kind": "eMAID", "group": "G2", "blocked": True, "owner": "Bob"},
        {"value": "T-05"},
        {"value": "T-06", "kind": "Central", "group": "G2"},
    ]
    for token in reversed(tokens):
        await api.post("/tokens", token, expect=201)
    values = [t["value"] for t in tokens]
    pages = await api.pages("/tokens", limit=4)
    assert [len(p) for p in pages] == [4, 2]
    assert [t["value"] for t in items(pages)] == values
    descending = await api.pages("/tokens", limit=4, sort="-value")
    assert [t["value"] for t in items(descending)] == values[::-1]

    async def listing(**params: Any) -> list[str]:
        return [t["value"] for t in items(await api.pages("/tokens", limit=1, **params))]

    assert await listing(kind="KeyCode") == ["T-02", "T-03"]
    assert await listing(group="G2") == ["T-04", "T-06"]
    assert await listing(blocked="true") == ["T-02", "T-04"]
    assert await listing(blocked="false") == ["T-01", "T-03", "T-05", "T-06"]
    assert await listing(owner="Ada") == ["T-01", "T-03"]
    assert await listing(owner="Ada", kind="KeyCode", sort="-value") == ["T-03"]
    assert await listing(group="G1", blocked="false") == ["T-01"]
    assert await listing(owner="Nobody") == []
    for params in ({"sort": "owner"}, {"limit": 0}, {"cursor": "x"}, {"blocked": "maybe"}):
        await api.get("/tokens", params=params, expect=400)


CSV_HEADERS = {"content-type": "text/csv"}


async def test_token_groups_listed_blocked_and_unblocked(node: App, api: Api) -> None:
    for value, group in (("F-1", "fleet"), ("F-2", "fleet"), ("F-3", "fleet"), ("H-1", "home")):
        await api.post("/tokens", {"value": value, "group": group}, expect=201)
    await api.post("/tokens", {"value": "LONE"}, expect=201)
    await api.post("/tokens/F-3/block")
    assert await api.get("/token-groups") == [
        {"name": "fleet", "tokens": 3, "blocked": 1},
        {"name": "home", "tokens": 1, "blocked": 0},
    ]
    changed = await api.post("/token-groups/fleet/block")
    assert changed == {"group": {"name": "fleet", "tokens": 3, "blocked": 3}, "changed": 2}
    async with connect(node.server.port, "CS-G", "1.6") as cp:
        drive = Driver(cp, "1.6")
        await drive.boot()
        assert await drive.authorize("F-1") == "Blocked"  # the station is told at once
        assert await drive.authorize("H-1") == "Accepted"
        await api.post("/token-groups/fleet/unblock")
        assert await drive.authorize("F-1") == "Accepted"
    assert (await api.get("/token-groups/fleet"))["blocked"] == 0
    await api.get("/token-groups/nobody", expect=404)
    await api.post("/token-groups/nobody/block", expect=404)
    viewer, _ = await new_token(api, "viewer")
    await api.as_(viewer).post("/token-groups/home/block", expect=403)


async def test_id_token_csv_import(api: Api) -> None:
    await api.post(
        "/tokens", {"value": "CSV-1", "blocked": True, "owner": "Old", "group": "OLD"}, expect=201
    )
    text = (
        "value,kind,group,expires_at,blocked,allow_concurrent,owner\n"
        "CSV-1,KeyCode,FLEET,2030-01-01T00:00:00Z,yes,0,Ada\n"
        "CSV-2,,,,,,\n"
        'CSV-3,eMAID,"G, with comma",,false,true,Bob\n'
        "CSV-2,,,,1,,Twice\n"  # a value given twice: the last row counts
    )
    imported = await api.post("/tokens/import", content=text.encode(), headers=CSV_HEADERS)
    assert imported == {"created": 2, "updated": 1}
    assert await api.get("/tokens/CSV-1") == {
        "value": "CSV-1",
        "kind": "KeyCode",
        "group": "FLEET",
        "expires_at": "2030-01-01T00:00:00Z",
        "blocked": True,
        "allow_concurrent": False,
        "owner": "Ada",
    }
    two = await api.get("/tokens/CSV-2")
    assert (two["kind"], two["blocked"], two["owner"], two["group"]) == (
        "ISO14443",
        True,
        "Twice",
        None,
    )
    three = await api.get("/tokens/CSV-3")
    assert (three["group"], three["allow_concurrent"], three["owner"]) == (
        "G, with comma",
        True,
        "Bob",
    )
    # The same file again: all updates. With a byte order mark (as spreadsheets write it).
    again = await api.post(
        "/tokens/import", content=b"\xef\xbb\xbf" + text.encode(), headers=CSV_HEADERS
    )
    assert again == {"created": 0, "updated": 3}

    # One bad row refuses the whole file, with every error found, and nothing is stored.
    bad = (
        "value,kind,blocked\n"
        "CSV-NEW,ISO14443,false\n"
        "CSV-1,Magnetic,false\n"
        "CSV-2,ISO14443,maybe\n"
        ",ISO14443,true\n"
    )
    refused = await api.post(
        "/tokens/import", content=bad.encode(), headers=CSV_HEADERS, expect=422
    )
    errors = refused["extra"]["errors"]
    assert [e.split(":")[0] for e in errors] == ["row 3", "row 4", "row 5"], errors
    assert "Magnetic" in errors[0] and "blocked" in errors[1]
    await api.get("/tokens/CSV-NEW", expect=404)
    assert (await api.get("/tokens/CSV-1"))["kind"] == "KeyCode"
    for content, message in (
        (b"kind,owner\nKeyCode,Ada\n", "value column"),
        (b"value,colour\nCSV-9,red\n", "unknown columns: colour"),
        (b"value\nCSV-9,extra-cell\n", "row 2"),
        (b"value,expires_at\nCSV-9,2030-01-01T00:00:00\n", "expires_at"),
        (b"value,owner\nCSV-9,J\xfcrgen\n", "UTF-8"),
    ):
        refused = await api.post("/tokens/import", content=content, headers=CSV_HEADERS, expect=422)
        assert message in str(refused), (content, refused)
    await api.get("/tokens/CSV-9", expect=404)
    assert await api.post("/tokens/import", content=b"value\n", headers=CSV_HEADERS) == {
        "created": 0,
        "updated": 0,
    }


async def test_id_token_csv_update_keeps_the_columns_it_does_not_name(api: Api) -> None:
    await api.post(
        "/tokens",
        {"value": "STOLEN", "kind": "KeyCode", "group": "FLEET", "blocked": True, "owner": "Ada"},
        expect=201,
    )
    before = await api.get("/tokens/STOLEN")
    imported = await api.post(
        "/tokens/import", content=b"value,owner\nSTOLEN,Grace\n", headers=CSV_HEADERS
    )
    assert imported == {"created": 0, "updated": 1}
    # Only the owner changes: the card stays blocked, in its group, of its kind.
    assert await api.get("/tokens/STOLEN") == before | {"owner": "Grace"}
    # A named column with an empty cell clears (or defaults) that field.
    await api.post("/tokens/import", content=b"value,group,owner\nSTOLEN,,\n", headers=CSV_HEADERS)
    assert await api.get("/tokens/STOLEN") == before | {"owner": None, "group": None}


async def test_id_token_expiry_without_offset_is_refused_not_a_server_error(api: Api) -> None:
    # The CSV import refuses it (test_id_token_csv_import); JSON bodies must too.
    await api.post("/tokens", {"value": "NAIVE"}, expect=201)
    await api.patch("/tokens/NAIVE", {"expires_at": "2030-01-01T00:00:00"}, expect=400)
    await api.post("/tokens", {"value": "NAIVE-2", "expires_at": "2030-01-01T00:00:00"}, expect=400)


async def test_every_id_token_created_can_be_addressed(api: Api) -> None:
    # /tokens/{value} cannot address a value with a "/" (%2F is decoded before routing): such a
    # token could not be read, changed, blocked or deleted, so it must not be created at all.
    created = await api.request("POST", "/tokens", json={"value": "FLEET/42"})
    if created.status_code == 201:
        await api.get("/tokens/FLEET%2F42")
        await api.delete("/tokens/FLEET%2F42")
    else:
        assert created.status_code == 400
    imported = await api.request(
        "POST", "/tokens/import", content=b"value\nFLEET/43\n", headers=CSV_HEADERS
    )
    if imported.status_code == 200:
        await api.get("/tokens/FLEET%2F43")
    else:
        assert imported.status_code == 422


# --- API tokens --------------------------------------------------------------------------------


async def test_api_tokens_roles_listing_and_revocation(api: Api) -> None:
    viewer_secret, viewer = await new_token(api, "viewer", "dashboard")
    operator_secret, operator = await new_token(api, "operator", "ops")
    admin_secret, admin = await new_token(api, "admin", "root")
    assert len(viewer_secret) >= 32 and len({viewer_secret, operator_secret, admin_secret}) == 3
    assert set(viewer) == {"id", "name", "role", "created_at", "revoked"}
    assert (viewer["name"], viewer["role"], viewer["revoked"]) == ("dashboard", "viewer", False)

    listing = await api.request("GET", "/api-tokens", expect=200)
    assert sorted(listing.json(), key=lambda t: t["id"]) == [viewer, operator, admin]
    for secret in (viewer_secret, operator_secret, admin_secret):
        assert secret not in listing.text
        assert hashlib.sha256(secret.encode()).hexdigest() not in listing.text

    as_viewer, as_operator, as_admin = (
        api.as_(viewer_secret),
        api.as_(operator_secret),
        api.as_(admin_secret),
    )
    assert (await as_viewer.get("/stations"))["items"] == []
    denied = await as_viewer.post("/stations", {"id": "CS-V"}, expect=403)
    assert denied == {
        "status_code": 403,
        "detail": "this needs the operator role; yours is viewer",
    }
    await as_operator.post("/stations", {"id": "CS-O"}, expect=201)
    await as_operator.get("/api-tokens", expect=403)
    await as_operator.post("/api-tokens", {"name": "x", "role": "admin"}, expect=403)
    assert len(await as_admin.get("/api-tokens")) == 3
    await as_viewer.get("/stations/CS-O")

    await api.delete(f"/api-tokens/{viewer['id']}")
    gone = await as_viewer.request("GET", "/stations", expect=401)
    assert gone.headers["www-authenticate"].startswith("Bearer")
    revoked = {t["id"]: t["revoked"] for t in await api.get("/api-tokens")}
    assert revoked == {viewer["id"]: True, operator["id"]: False, admin["id"]: False}
    await as_operator.get("/stations")  # the others still work
    await as_admin.delete(f"/api-tokens/{operator['id']}")
    await as_operator.get("/stations", expect=401)
    await api.delete("/api-tokens/999999", expect=404)
    for body in (
        {"name": "x", "role": "superuser"},
        {"name": "", "role": "viewer"},
        {"name": "n" * 101, "role": "viewer"},
        {"role": "viewer"},
        {"name": "x", "role": "viewer", "secret": "mine"},
    ):
        await api.post("/api-tokens", body, expect=400)
    assert len(await api.get("/api-tokens")) == 3


# --- who may call what -------------------------------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")
PATH_VALUES = {
    "station_id": "CS-AUTH",
    "operation": "Reset",
    "value": "CARD-AUTH",
    "transaction_id": "1",
    "token_id": "1",
    "webhook_id": "1",
    "delivery_id": "x",
    "reservation_id": "1",
    "name": "fleet",
    "site_id": "depot",
    "circuit_id": "grid",
    "evse_id": "1",
    "peer_id": "dso",
    "group_id": "grp-1",
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/stations"): {"json": {"id": "CS-AUTH-NEW"}},
    ("PATCH", "/api/v1/stations/{station_id}"): {"json": {"lenient": []}},
    ("POST", "/api/v1/stations/{station_id}/commands/{operation}"): {"json": {"type": "Soft"}},
    ("POST", "/api/v1/tokens"): {"json": {"value": "CARD-AUTH-NEW"}},
    ("POST", "/api/v1/tokens/import"): {
        "content": b"value\nCARD-AUTH-CSV\n",
        "headers": {"content-type": "text/csv"},
    },
    ("PATCH", "/api/v1/tokens/{value}"): {"json": {"owner": "Ada"}},
    ("POST", "/api/v1/api-tokens"): {"json": {"name": "new", "role": "viewer"}},
    ("PUT", "/api/v1/sites/{site_id}"): {"json": {"circuits": [{"id": "grid"}]}},
}


def operations_of(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    ]


async def call(
    api: Api, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """The operation with plausible path parameters and body."""
    url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
    kwargs = dict(BODIES.get((method, path), {}))
    kwargs["headers"] = {**kwargs.get("headers", {}), **(headers or {})}
    if doc_says_stream(path):  # a stream never ends: its status is all there is to see
        if api.token is not None:
            kwargs["headers"].setdefault("Authorization", f"Bearer {api.token}")
        async with api.client.stream(method, url, **kwargs) as response:
            if response.status_code != 200:
                await response.aread()  # an error is a plain JSON body
            return response
    return await api.request(method, url, **kwargs)


def doc_says_stream(path: str) -> bool:
    return path.endswith(("/events", "/stream"))


def needs_role(method: str, path: str) -> str:
    """The least role an operation needs, as the routes declare it."""
    if path.startswith((f"{API}/api-tokens", f"{API}/oscp")) or path.endswith("/security-profile"):
        return "admin"
    if path.startswith(f"{API}/webhooks"):
        operator = path.endswith("/deliveries") or path.endswith("/retry")
        return "operator" if operator else "admin"
    return "viewer" if method == "GET" else "operator"


NOT_AUTHENTICATED = [
    {},
    {"Authorization": "Bearer wrong-token-0123456789"},
    {"Authorization": "Bearer"},
    {"Authorization": f"Basic {ADMIN_TOKEN}"},
    {"Authorization": ADMIN_TOKEN},
]


async def test_building_the_api_leaves_the_log_level_alone(settings: Settings) -> None:
    """Litestar's own logging set-up would put the root logger back at INFO: every station's
    connect and disconnect written at ``--log-level warning``, a third of the CPU per message."""
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    try:
        logs.configure("warning", "console", cache_loggers=False)
        node = await build(replace(settings, api_port=0))
        await node.stop()
        assert root.level == logging.WARNING
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        structlog.reset_defaults()  # the next tests capture structlog lines


async def test_a_node_that_cannot_start_closes_what_it_opened(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        node = await build(replace(settings, api_port=taken.getsockname()[1]))
        with pytest.raises(OSError, match="cannot listen"):
            await node.start()
    # The whole stop ran: the store, closed last, refuses reads.
    with pytest.raises(StorageError, match="closed"):
        await node.store.list_stations()


async def test_public_endpoints(api: Api) -> None:
    for caller in (api.as_(None), api.as_("wrong-token-0123456789")):
        assert await caller.get("/health") == {"status": "ok"}
        assert await caller.get("/ready") == {"status": "ready"}
        doc = await caller.get(f"{API}/openapi.json")
        assert doc["info"]["title"] == "chargegrid"
        docs = await caller.request("GET", f"{API}/docs", expect=200)
        assert "<html" in docs.text.lower()


async def test_the_openapi_document_lists_every_route(node: App, api: Api) -> None:
    doc = await api.as_(None).get(f"{API}/openapi.json")
    documented = set(operations_of(doc))
    litestar = create_api(
        ApiContext(
            node.store,
            node.central,
            node.ocpp,
            node.commands,
            node.access,
            node.server,
            node.reservations,
            node.security_profiles,
            Firmware(node.commands, node.store),
        )
    )
    served = {
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in litestar.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.fn.__module__.startswith("chargegrid.")  # not the OpenAPI document's own
        for method in handler.http_methods
        if method.lower() in METHODS
    }
    # The document does not list itself; every other route is in it.
    # Not documented: the document's own route, the dashboard's page, and the OSCP endpoints
    # (OSCP 2.0 is their document; its own token scheme, not the REST API's).
    undocumented = {
        ("GET", f"{API}/openapi.json"),
        ("GET", "/"),
        ("POST", "/oscp/fp/2.0/{message}"),
    }
    assert served - undocumented == documented


async def test_every_endpoint_needs_a_token_of_the_right_role(api: Api) -> None:
    await api.post("/stations", {"id": "CS-AUTH"}, expect=201)
    await api.post("/tokens", {"value": "CARD-AUTH"}, expect=201)
    viewer, _ = await new_token(api, "viewer")
    operator, _ = await new_token(api, "operator")
    doc = await api.as_(None).get(f"{API}/openapi.json")
    operations = operations_of(doc)
    public = [(m, p) for m, p in operations if not p.startswith(API) and p != "/metrics"]
    assert sorted(public) == [("GET", "/health"), ("GET", "/ready")]
    protected = [(m, p) for m, p in operations if (m, p) not in public]
    assert ("GET", "/metrics") in protected and len(protected) >= 29
    writes = [(m, p) for m, p in protected if m != "GET"]
    assert {m for m, _ in writes} == {"POST", "PATCH", "PUT", "DELETE"}
    assert any(p.startswith(f"{API}/api-tokens") for _, p in protected)

    for method, path in protected:
        security = doc["paths"][path][method.lower()].get("security")
        assert security == [{"bearer": []}], (method, path)
        for headers in NOT_AUTHENTICATED:
            response = await call(api.as_(None), method, path, headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["status_code"] == 401

    for method, path in protected:
        response = await call(api.as_(viewer), method, path)
        if needs_role(method, path) != "viewer":
            assert response.status_code == 403, (method, path, response.text)
        else:
            assert response.status_code < 500 and response.status_code not in (401, 403), (
                method,
                path,
                response.text,
            )

    for method, path in protected:
        response = await call(api.as_(operator), method, path)
        if needs_role(method, path) == "admin":
            assert response.status_code == 403, (method, path, response.text)
        else:
            assert response.status_code < 500 and response.status_code not in (401, 403), (
                method,
                path,
                response.text,
            )
    # The viewer changed nothing; the operator's writes went through.
    assert (await api.get("/tokens/CARD-AUTH-CSV"))["value"] == "CARD-AUTH-CSV"


async def test_the_documentation_page_loads_everything_from_this_server(node: App) -> None:
    """No CDN: Swagger UI's script, preset and style come from the package (static/)."""
    base = f"http://127.0.0.1:{node.api.port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        page = await client.get("/api/v1/docs")
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]*)"', page.text)
        assert len(assets) == 3, assets
        for asset in assets:
            assert asset.startswith("/static/"), asset
            fetched = await client.get(asset)
            assert fetched.status_code == 200 and len(fetched.content) > 10_000, asset


async def test_deleting_a_connected_station_drops_its_connection(node: App, api: Api) -> None:
    async with connect(node.server.port, "CS-GONE", "1.6") as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
        await api.delete("/stations/CS-GONE", expect=204)
        await asyncio.wait_for(cp._connection.wait_closed(), 5)
        assert cp._connection.close_code == 1008
    await api.get("/stations/CS-GONE", expect=404)


async def test_metrics_count_connections_messages_and_writes(node: App, api: Api) -> None:
    created = await api.post("/api-tokens", {"name": "prometheus", "role": "viewer"}, expect=201)
    scraper = api.as_(created["token"])
    async with connect(node.server.port, "CS-M", "1.6") as cp:
        station = Driver(cp, "1.6")
        assert await station.boot() == "Accepted"
        await cp.call(call16.Heartbeat(), suppress=False)
        await cp._connection.send('[2,"bad","NoSuchAction",{}]')  # refused: NotImplemented
        await asyncio.sleep(0.2)
        scraped = await scraper.request("GET", "/metrics", expect=200)
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    figures = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in scraped.text.splitlines()
        if line and not line.startswith("#")
    }
    assert figures['chargegrid_stations_connected{ocpp_version="1.6"}'] == 1
    assert figures['chargegrid_ocpp_messages_total{action="BootNotification",result="ok"}'] == 1
    assert figures['chargegrid_ocpp_messages_total{action="Heartbeat",result="ok"}'] == 1
    assert figures['chargegrid_ocpp_answer_seconds_count{action="Heartbeat"}'] == 1
    assert figures['chargegrid_ocpp_rejected_input_total{code="NotImplemented"}'] == 1
    assert figures["chargegrid_store_writes_total"] >= 2
    assert figures["chargegrid_store_commits_total"] >= 1
    await api.as_(None).request("GET", "/metrics", expect=401)


async def test_an_unknown_api_path_gets_the_json_404(api: Api) -> None:
    for caller in (api, api.as_(None)):
        for path in (f"{API}/nope", f"{API}/stations/CS/nope/deeper", API):
            response = await caller.request("GET", path, expect=404)
            assert response.json()["status_code"] == 404, path
