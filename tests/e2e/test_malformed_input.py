"""Malformed input from a raw WebSocket client: the exact CALLERROR, and the connection stays up.

OCPP-J 1.6 section 4.2.3 and OCPP 2.0.1 Part 4 section 4.3 name the error codes (1.6 spells
"FormationViolation" and "OccurenceConstraintViolation"; 2.0.1 adds "RpcFrameworkError" and
"MessageTypeNotSupported"). The client here is `websockets` alone, so nothing corrects the frames.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import websockets
from stations import SUBPROTOCOL

from chargegrid.bootstrap import App
from chargegrid.domain.model import IdToken
from chargegrid.protocols.ocppj.validation import Deviation

NOW = "2026-03-01T10:00:00Z"


class RawStation:
    """A station that writes OCPP-J frames by hand and reads the CSMS's answers."""

    def __init__(self, ws: Any, version: str) -> None:
        self.ws = ws
        self.version = version

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def receive(self) -> Any:
        async with asyncio.timeout(5):
            return json.loads(await self.ws.recv())

    async def exchange(self, text: str) -> Any:
        await self.send(text)
        return await self.receive()

    async def call(self, unique_id: str, action: str, payload: dict[str, Any]) -> Any:
        return await self.exchange(json.dumps([2, unique_id, action, payload]))

    async def boot(self) -> None:
        payload = (
            {"chargePointVendor": "ACME", "chargePointModel": "Wallbox-1"}
            if self.version == "1.6"
            else {
                "chargingStation": {"vendorName": "ACME", "model": "Wallbox-2"},
                "reason": "PowerUp",
            }
        )
        answer = await self.call("boot-1", "BootNotification", payload)
        assert answer[:2] == [3, "boot-1"] and answer[2]["status"] == "Accepted"

    async def assert_alive(self, unique_id: str = "hb-1") -> None:
        answer = await self.call(unique_id, "Heartbeat", {})
        assert answer[:2] == [3, unique_id] and answer[2]["currentTime"].endswith("Z")


@asynccontextmanager
async def raw_station(port: int, station_id: str, version: str) -> AsyncIterator[RawStation]:
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ocpp/{station_id}",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        open_timeout=5,
    ) as ws:
        assert ws.subprotocol == SUBPROTOCOL[version]
        yield RawStation(ws, version)


# --- one malformed input, its expected CALLERROR per version ------------------------------------


@dataclass(frozen=True)
class Case:
    frames: dict[str, str]  # by OCPP version: the text sent
    unique_id: str  # the id the CALLERROR must carry ("-1": the id could not be read)
    codes: tuple[str, str]  # (OCPP 1.6 code, OCPP 2.0.1 code)
    says: dict[str, str]  # by version: what the description must mention


def _call(unique_id: str, action: str, payload: Any) -> str:
    return json.dumps([2, unique_id, action, payload])


def _both(text: str) -> dict[str, str]:
    return {"1.6": text, "2.0.1": text}


def _token(value: Any) -> dict[str, Any]:
    return {"idToken": {"idToken": value, "type": "ISO14443"}}


def _status(connector: int, status: str) -> dict[str, str]:
    return {
        "1.6": _call(
            "m-st",
            "StatusNotification",
            {"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": NOW},
        ),
        "2.0.1": _call(
            "m-st",
            "StatusNotification",
            {"timestamp": NOW, "connectorStatus": status, "evseId": connector, "connectorId": 1},
        ),
    }


CASES: dict[str, Case] = {
    "invalid-json": Case(
        _both('[2, "m-json", "Heartbeat", {'),
        "-1",
        ("FormationViolation", "RpcFrameworkError"),
        _both("not a JSON array"),
    ),
    "object-not-array": Case(
        _both('{"messageTypeId": 2, "uniqueId": "m-obj", "action": "Heartbeat", "payload": {}}'),
        "-1",
        ("FormationViolation", "RpcFrameworkError"),
        _both("not a JSON array"),
    ),
    "message-type-7": Case(
        _both('[7, "m-type", "Heartbeat", {}]'),
        "m-type",
        ("ProtocolError", "MessageTypeNotSupported"),
        _both("unknown MessageTypeId 7"),
    ),
    "unknown-action": Case(
        _both(_call("m-act", "TeleportVehicle", {})),
        "m-act",
        ("NotImplemented", "NotImplemented"),
        _both("TeleportVehicle"),
    ),
    "csms-only-action": Case(
        {
            "1.6": _call("m-csms", "Reset", {"type": "Hard"}),
            "2.0.1": _call("m-csms", "Reset", {"type": "Immediate"}),
        },
        "m-csms",
        ("NotSupported", "NotSupported"),
        _both("Reset"),
    ),
    "missing-required-field": Case(
        _both(_call("m-miss", "Authorize", {})),
        "m-miss",
        ("OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
        {"1.6": "idTag", "2.0.1": "idToken"},
    ),
    "wrong-type": Case(
        {
            "1.6": _call("m-type2", "Authorize", {"idTag": 4711}),
            "2.0.1": _call("m-type2", "Authorize", _token(4711)),
        },
        "m-type2",
        ("TypeConstraintViolation", "TypeConstraintViolation"),
        {"1.6": "$.idTag", "2.0.1": "$.idToken.idToken"},
    ),
    "string-too-long": Case(
        {
            "1.6": _call("m-long", "Authorize", {"idTag": "X" * 21}),
            "2.0.1": _call("m-long", "Authorize", _token("X" * 37)),
        },
        "m-long",
        ("PropertyConstraintViolation", "PropertyConstraintViolation"),
        {"1.6": "length <= 20", "2.0.1": "length <= 36"},
    ),
    "unknown-enum-value": Case(
        _status(1, "Sleeping"),
        "m-st",
        ("PropertyConstraintViolation", "PropertyConstraintViolation"),
        _both("Sleeping"),
    ),
    "unknown-extra-field": Case(
        {
            "1.6": _call("m-extra", "Authorize", {"idTag": "DRIVER-1", "colour": "red"}),
            "2.0.1": _call("m-extra", "Authorize", {**_token("DRIVER-1"), "colour": "red"}),
        },
        "m-extra",
        ("FormationViolation", "FormatViolation"),
        _both("colour"),
    ),
}

# OCPP 2.0.1 schemas bound a few numbers (state of charge 0..100); the 1.6 schemas bound none.
SOC_OUT_OF_RANGE = _call(
    "m-soc",
    "NotifyEVChargingNeeds",
    {
        "evseId": 1,
        "chargingNeeds": {
            "requestedEnergyTransfer": "DC",
            "dcChargingParameters": {
                "evMaxCurrent": 200,
                "evMaxVoltage": 400,
                "stateOfCharge": 101,
            },
        },
    },
)


def assert_call_error(frame: Any, unique_id: str, code: str, says: str) -> None:
    assert isinstance(frame, list) and len(frame) == 5, frame
    assert frame[:3] == [4, unique_id, code], frame
    assert isinstance(frame[3], str) and says in frame[3], frame
    assert frame[4] == {}, frame


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_malformed_input_gets_its_call_error(app: App, version: str, case: str) -> None:
    spec = CASES[case]
    async with raw_station(app.server.port, "CS-RAW", version) as station:
        await station.boot()
        frame = await station.exchange(spec.frames[version])
        code = spec.codes[0] if version == "1.6" else spec.codes[1]
        assert_call_error(frame, spec.unique_id, code, spec.says[version])
        await station.assert_alive()


async def test_number_out_of_range_201(app: App) -> None:
    async with raw_station(app.server.port, "CS-RAW", "2.0.1") as station:
        await station.boot()
        frame = await station.exchange(SOC_OUT_OF_RANGE)
        assert_call_error(frame, "m-soc", "PropertyConstraintViolation", "stateOfCharge")
        await station.assert_alive()


async def test_negative_connector_is_refused(app: App, version: str) -> None:
    async with raw_station(app.server.port, "CS-RAW", version) as station:
        await station.boot()
        frame = await station.exchange(_status(-1, "Available")[version])
        field = "connectorId" if version == "1.6" else "evseId"
        assert_call_error(frame, "m-st", "PropertyConstraintViolation", f"{field} must be >= 0")
        await station.assert_alive()
    assert await app.store.connector_statuses("CS-RAW") == []


async def test_second_call_before_the_first_is_answered(app: App, version: str) -> None:
    await app.store.save_token(IdToken("DRIVER-1"))
    authorize = {"idTag": "DRIVER-1"} if version == "1.6" else _token("DRIVER-1")
    async with raw_station(app.server.port, "CS-PIPE", version) as station:
        await station.boot()
        # Three CALLs written at once: the 2nd and 3rd arrive while the 1st is being served.
        await station.send(_call("p-1", "Authorize", authorize))
        await station.send(_status(1, "Available")[version].replace("m-st", "p-2"))
        await station.send(_call("p-3", "Heartbeat", {}))
        answers = [await station.receive() for _ in range(3)]
        assert [a[:2] for a in answers] == [[3, "p-1"], [3, "p-2"], [3, "p-3"]]
        assert answers[0][2]["idTagInfo" if version == "1.6" else "idTokenInfo"]["status"] == (
            "Accepted"
        )
        await station.assert_alive()
    assert [s.status for s in await app.store.connector_statuses("CS-PIPE")] == ["Available"]


# --- lenient mode (STYLE 13) -----------------------------------------------------------------

OFF_SPEC_METER_VALUES = {
    "connectorId": 1,
    "meterValue": [
        {
            "timestamp": NOW,
            "sampledValue": [
                {"value": 2500, "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": 7.2, "measurand": "Power.Active.Import", "unit": "kW"},
            ],
        }
    ],
}
OFF_SPEC_STATUS = {
    "connectorId": 1,
    "errorCode": "NoError",
    "status": "available",
    "timestamp": NOW,
}


async def _start_16(station: RawStation) -> int:
    answer = await station.call(
        "s-1",
        "StartTransaction",
        {"connectorId": 1, "idTag": "DRIVER-1", "meterStart": 1000, "timestamp": NOW},
    )
    assert answer[:2] == [3, "s-1"]
    return int(answer[2]["transactionId"])


async def test_lenient_station_gets_known_deviations_accepted(app: App) -> None:
    await app.store.save_token(IdToken("DRIVER-1"))
    await app.ocpp.set_lenient("CS-LENIENT", frozenset(Deviation))
    async with raw_station(app.server.port, "CS-LENIENT", "1.6") as station:
        await station.boot()
        tx_id = await _start_16(station)
        meter = {**OFF_SPEC_METER_VALUES, "transactionId": tx_id}
        assert await station.call("l-1", "MeterValues", meter) == [3, "l-1", {}]
        assert await station.call("l-2", "StatusNotification", OFF_SPEC_STATUS) == [3, "l-2", {}]
    tx = await app.store.find_transaction("CS-LENIENT", str(tx_id))
    assert tx is not None
    [reading] = await app.store.meter_values(tx.id)
    assert sorted((v.measurand, v.value, v.unit) for v in reading.values) == [
        ("Energy.Active.Import.Register", Decimal(2500), "Wh"),
        ("Power.Active.Import", Decimal("7.2"), "kW"),
    ]
    assert [s.status for s in await app.store.connector_statuses("CS-LENIENT")] == ["Available"]


async def test_strict_station_gets_the_same_deviations_refused(app: App) -> None:
    await app.store.save_token(IdToken("DRIVER-1"))
    async with raw_station(app.server.port, "CS-STRICT", "1.6") as station:
        await station.boot()
        tx_id = await _start_16(station)
        meter = {**OFF_SPEC_METER_VALUES, "transactionId": tx_id}
        frame = await station.call("l-1", "MeterValues", meter)
        assert_call_error(frame, "l-1", "TypeConstraintViolation", "sampledValue[0].value")
        frame = await station.call("l-2", "StatusNotification", OFF_SPEC_STATUS)
        assert_call_error(frame, "l-2", "PropertyConstraintViolation", "'available'")
        await station.assert_alive()
    tx = await app.store.find_transaction("CS-STRICT", str(tx_id))
    assert tx is not None
    assert await app.store.meter_values(tx.id) == []
    assert await app.store.connector_statuses("CS-STRICT") == []
