"""CSMS-initiated operations sent with ``app.commands`` to a station built on the `ocpp` package.

Every operation of both versions goes out with a realistic payload (OCPP 1.6 section 5 and the
security whitepaper; OCPP 2.0.1 Part 2), reaches the station as sent, and comes back answered and
recorded. Then what answered operations change (commands.py docstring), and the error paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import NotSupportedError
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v201 import call_result as result201
from stations import (
    RESPONSES_16,
    RESPONSES_201,
    Driver,
    Station16,
    Station201,
    connect,
)

from chargegrid.bootstrap import App
from chargegrid.domain.model import AuthorizationStatus, IdToken, TransactionState
from chargegrid.domain.redaction import redact
from chargegrid.protocols.ocpp16.dialect import DIALECT as OCPP16
from chargegrid.protocols.ocpp201.dialect import DIALECT as OCPP201
from chargegrid.service.commands import (
    CommandInvalidError,
    CommandRejectedError,
    CommandTimeoutError,
    StationOfflineError,
)

CERT = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCAVmgAwIBAgIUJ2pKl5c1Qq7m4nq4ZrQeXb0Jr1gwCgYIKoZIzj0EAwIw\n"
    "LzELMAkGA1UEBhMCREUxIDAeBgNVBAMMF2NoYXJnZWdyaWQgdGVzdCByb290IENB\n"
    "-----END CERTIFICATE-----\n"
)
SIGNATURE = "MEUCIQDd3c2hpG7dJfP0kGb7oC0Y0lV1XJvQ2bUq1b0n3gZ1LwIgQ3v4Z1Z0p6o9sU2a"
HASH_DATA = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "6d3a5c0b4ee0d5d5bb2f1c1a1e5b7c0e8f2b1f0d4c3a2b1e0f9d8c7b6a5f4e3d",
    "issuerKeyHash": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "serialNumber": "5e2c7a19",
}
FIRMWARE_URL = "https://firmware.example.com/acme/wallbox-1.3.0.bin"
TOKEN_201 = {"idToken": "DRIVER-1", "type": "ISO14443"}

PAYLOADS_16: dict[str, dict[str, Any]] = {
    "CancelReservation": {"reservationId": 42},
    "CertificateSigned": {"certificateChain": CERT},
    "ChangeAvailability": {"connectorId": 1, "type": "Inoperative"},
    "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "600"},
    "ClearCache": {},
    "ClearChargingProfile": {
        "connectorId": 1,
        "chargingProfilePurpose": "TxProfile",
        "stackLevel": 0,
    },
    "DataTransfer": {"vendorId": "com.acme", "messageId": "ping", "data": '{"seq": 1}'},
    "DeleteCertificate": {"certificateHashData": HASH_DATA},
    "ExtendedTriggerMessage": {"requestedMessage": "StatusNotification", "connectorId": 1},
    "GetCompositeSchedule": {"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"},
    "GetConfiguration": {"key": ["HeartbeatInterval", "NumberOfConnectors"]},
    "GetDiagnostics": {
        "location": "ftp://diagnostics.example.com/uploads/",
        "retries": 3,
        "retryInterval": 60,
        "startTime": "2026-03-01T00:00:00Z",
        "stopTime": "2026-03-02T00:00:00Z",
    },
    "GetInstalledCertificateIds": {"certificateType": "CentralSystemRootCertificate"},
    "GetLocalListVersion": {},
    "GetLog": {
        "log": {
            "remoteLocation": "https://logs.example.com/upload",
            "oldestTimestamp": "2026-03-01T00:00:00Z",
            "latestTimestamp": "2026-03-02T00:00:00Z",
        },
        "logType": "SecurityLog",
        "requestId": 7,
        "retries": 2,
        "retryInterval": 30,
    },
    "InstallCertificate": {"certificateType": "CentralSystemRootCertificate", "certificate": CERT},
    "RemoteStartTransaction": {"connectorId": 1, "idTag": "DRIVER-1"},
    "RemoteStopTransaction": {"transactionId": 17},
    "ReserveNow": {
        "connectorId": 1,
        "expiryDate": "2030-06-01T12:00:00Z",
        "idTag": "DRIVER-1",
        "reservationId": 42,
    },
    "Reset": {"type": "Soft"},
    "SendLocalList": {
        "listVersion": 1,
        "updateType": "Full",
        "localAuthorizationList": [
            {"idTag": "DRIVER-1", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "DRIVER-2", "idTagInfo": {"status": "Blocked"}},
        ],
    },
    "SetChargingProfile": {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 10,
            "transactionId": 17,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "duration": 7200,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
                    {"startPeriod": 3600, "limit": 10.0, "numberPhases": 3},
                ],
                "minChargingRate": 6.0,
            },
        },
    },
    "SignedUpdateFirmware": {
        "requestId": 11,
        "firmware": {
            "location": FIRMWARE_URL,
            "retrieveDateTime": "2026-03-01T02:00:00Z",
            "installDateTime": "2026-03-01T03:00:00Z",
            "signingCertificate": CERT,
            "signature": SIGNATURE,
        },
        "retries": 3,
        "retryInterval": 120,
    },
    "TriggerMessage": {"requestedMessage": "MeterValues", "connectorId": 1},
    "UnlockConnector": {"connectorId": 1},
    "UpdateFirmware": {
        "location": FIRMWARE_URL,
        "retrieveDate": "2026-03-01T02:00:00Z",
        "retries": 3,
        "retryInterval": 120,
    },
}

_COMPONENT_VARIABLES = [
    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
    {
        "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "Power"},
        "attributeType": "MaxSet",
    },
]

PAYLOADS_201: dict[str, dict[str, Any]] = {
    "CancelReservation": {"reservationId": 43},
    "CertificateSigned": {
        "certificateChain": CERT,
        "certificateType": "ChargingStationCertificate",
    },
    "ChangeAvailability": {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 1}},
    "ClearCache": {},
    "ClearChargingProfile": {
        "chargingProfileCriteria": {
            "evseId": 1,
            "chargingProfilePurpose": "TxDefaultProfile",
            "stackLevel": 0,
        }
    },
    "ClearDisplayMessage": {"id": 5},
    "ClearVariableMonitoring": {"id": [3, 4]},
    "CostUpdated": {"totalCost": 12.34, "transactionId": "tx-1"},
    "CustomerInformation": {
        "requestId": 21,
        "report": True,
        "clear": False,
        "idToken": TOKEN_201,
    },
    "DataTransfer": {"vendorId": "com.acme", "messageId": "ping", "data": {"seq": 1}},
    "DeleteCertificate": {"certificateHashData": HASH_DATA},
    "GetBaseReport": {"requestId": 31, "reportBase": "FullInventory"},
    "GetChargingProfiles": {
        "requestId": 32,
        "evseId": 1,
        "chargingProfile": {"chargingProfilePurpose": "TxProfile", "chargingLimitSource": ["CSO"]},
    },
    "GetCompositeSchedule": {"duration": 3600, "evseId": 1, "chargingRateUnit": "W"},
    "GetDisplayMessages": {"requestId": 33, "id": [5], "priority": "InFront", "state": "Idle"},
    "GetInstalledCertificateIds": {
        "certificateType": ["CSMSRootCertificate", "V2GRootCertificate"]
    },
    "GetLocalListVersion": {},
    "GetLog": {
        "log": {
            "remoteLocation": "https://logs.example.com/upload",
            "oldestTimestamp": "2026-03-01T00:00:00Z",
            "latestTimestamp": "2026-03-02T00:00:00Z",
        },
        "logType": "DiagnosticsLog",
        "requestId": 34,
        "retries": 1,
        "retryInterval": 60,
    },
    "GetMonitoringReport": {
        "requestId": 35,
        "monitoringCriteria": ["ThresholdMonitoring", "DeltaMonitoring"],
        "componentVariable": [
            {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
        ],
    },
    "GetReport": {
        "requestId": 36,
        "componentCriteria": ["Problem"],
        "componentVariable": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ],
    },
    "GetTransactionStatus": {"transactionId": "tx-1"},
    "GetVariables": {"getVariableData": _COMPONENT_VARIABLES},
    "InstallCertificate": {"certificateType": "CSMSRootCertificate", "certificate": CERT},
    "PublishFirmware": {
        "location": FIRMWARE_URL,
        "checksum": "d41d8cd98f00b204e9800998ecf8427e",
        "requestId": 37,
        "retries": 2,
        "retryInterval": 60,
    },
    "RequestStartTransaction": {"idToken": TOKEN_201, "remoteStartId": 1001, "evseId": 1},
    "RequestStopTransaction": {"transactionId": "tx-1"},
    "ReserveNow": {
        "id": 43,
        "expiryDateTime": "2030-06-01T12:00:00Z",
        "idToken": TOKEN_201,
        "evseId": 1,
        "connectorType": "cType2",
    },
    "Reset": {"type": "OnIdle"},
    "SendLocalList": {
        "versionNumber": 1,
        "updateType": "Full",
        "localAuthorizationList": [
            {"idToken": TOKEN_201, "idTokenInfo": {"status": "Accepted"}},
        ],
    },
    "SetChargingProfile": {
        "evseId": 1,
        "chargingProfile": {
            "id": 10,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": 1,
                    "startSchedule": "2026-03-01T00:00:00Z",
                    "duration": 86400,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": 11000.0, "numberPhases": 3},
                        {"startPeriod": 28800, "limit": 7400.0, "numberPhases": 3},
                    ],
                }
            ],
        },
    },
    "SetDisplayMessage": {
        "message": {
            "id": 5,
            "priority": "NormalCycle",
            "state": "Idle",
            "message": {
                "format": "UTF8",
                "language": "en",
                "content": "Welcome! Tap your card to start charging.",
            },
            "startDateTime": "2026-03-01T00:00:00Z",
            "endDateTime": "2026-04-01T00:00:00Z",
        }
    },
    "SetMonitoringBase": {"monitoringBase": "FactoryDefault"},
    "SetMonitoringLevel": {"severity": 4},
    "SetNetworkProfile": {
        "configurationSlot": 2,
        "connectionData": {
            "ocppVersion": "OCPP20",
            "ocppTransport": "JSON",
            "ocppCsmsUrl": "wss://csms.example.com/ocpp",
            "messageTimeout": 30,
            "securityProfile": 2,
            "ocppInterface": "Wireless0",
            "apn": {
                "apn": "internet.example.net",
                "apnAuthentication": "CHAP",
                "apnUserName": "wallbox",
                "apnPassword": "s3cret",
                "simPin": 1234,
                "preferredNetwork": "26201",
                "useOnlyPreferredNetwork": False,
            },
        },
    },
    "SetVariableMonitoring": {
        "setMonitoringData": [
            {
                "value": 11000.0,
                "type": "UpperThreshold",
                "severity": 5,
                "transaction": False,
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "Power"},
            }
        ]
    },
    "SetVariables": {
        "setVariableData": [
            {
                "attributeType": "Actual",
                "attributeValue": "600",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
    },
    "TriggerMessage": {
        "requestedMessage": "StatusNotification",
        "evse": {"id": 1, "connectorId": 1},
    },
    "UnlockConnector": {"evseId": 1, "connectorId": 1},
    "UnpublishFirmware": {"checksum": "d41d8cd98f00b204e9800998ecf8427e"},
    "UpdateFirmware": {
        "requestId": 38,
        "firmware": {
            "location": FIRMWARE_URL,
            "retrieveDateTime": "2026-03-01T02:00:00Z",
            "installDateTime": "2026-03-01T03:00:00Z",
            "signingCertificate": CERT,
            "signature": SIGNATURE,
        },
        "retries": 3,
        "retryInterval": 120,
    },
}

PAYLOADS = {"1.6": PAYLOADS_16, "2.0.1": PAYLOADS_201}
RESPONSES = {"1.6": RESPONSES_16, "2.0.1": RESPONSES_201}
OPERATIONS = [(v, a) for v, table in PAYLOADS.items() for a in sorted(table)]


def expected_response(version: str, action: str, received: dict[str, Any]) -> dict[str, Any]:
    """What the canned station answers to ``received``, in wire camelCase."""
    answer = RESPONSES[version][action]
    return dict(snake_to_camel_case(answer(received) if callable(answer) else answer))


async def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    ("version", "dialect"), [("1.6", OCPP16), ("2.0.1", OCPP201)], ids=["1.6", "2.0.1"]
)
def test_every_csms_operation_has_a_test_payload(version: str, dialect: Any) -> None:
    assert sorted(PAYLOADS[version]) == sorted(dialect.csms_actions)


@pytest.mark.parametrize(("version", "action"), OPERATIONS, ids=[f"{v}-{a}" for v, a in OPERATIONS])
async def test_operation_reaches_the_station_and_is_recorded(
    app: App, version: str, action: str
) -> None:
    payload = PAYLOADS[version][action]
    async with connect(app.server.port, "CS-CMD", version) as cp:
        await Driver(cp, version).boot()
        result = await app.commands.send("CS-CMD", action, payload)
    kept = redact(action, payload)  # what is recorded: the payload less its secrets
    assert result.action == action
    assert result.request == kept
    assert (kept != payload) is (action == "SetNetworkProfile")  # the APN password, the PIN
    assert cp.received == [(action, camel_to_snake_case(payload))]  # the station gets them
    assert result.response == expected_response(version, action, cp.received[0][1])
    records = await app.store.commands("CS-CMD")
    assert [(r.action, r.outcome, r.request, r.response) for r in records] == [
        (action, "answered", kept, result.response)
    ]
    assert records[0].answered_at is not None and records[0].answered_at >= records[0].sent_at


# --- what answered operations change ----------------------------------------------------------


async def test_configuration_read_and_written_in_16(app: App) -> None:
    async with connect(app.server.port, "CS-CFG", "1.6") as cp:
        await Driver(cp, "1.6").boot()
        await app.commands.send("CS-CFG", "GetConfiguration", {})
        stored = {(c.variable, c.value, c.readonly) for c in await app.store.config("CS-CFG")}
        assert stored == {("HeartbeatInterval", "300", False), ("NumberOfConnectors", "2", True)}
        changed = await app.commands.send(
            "CS-CFG", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "600"}
        )
        assert changed.response == {"status": "Accepted"}
    values = {c.variable: c.value for c in await app.store.config("CS-CFG")}
    assert values == {"HeartbeatInterval": "600", "NumberOfConnectors": "2"}


async def test_variables_read_and_written_in_201(app: App) -> None:
    heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    power = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
    async with connect(app.server.port, "CS-VAR", "2.0.1") as cp:
        await Driver(cp, "2.0.1").boot()
        await app.commands.send("CS-VAR", "GetVariables", {"getVariableData": [heartbeat, power]})
        stored = {
            (c.component, c.variable, c.value, c.attribute, c.evse_id)
            for c in await app.store.config("CS-VAR")
        }
        assert stored == {
            ("OCPPCommCtrlr", "HeartbeatInterval", "42", "Actual", None),
            ("EVSE", "Power", "42", "Actual", 1),
        }
        await app.commands.send(
            "CS-VAR",
            "SetVariables",
            {"setVariableData": [{**heartbeat, "attributeValue": "600"}]},
        )
    values = {(c.component, c.variable): c.value for c in await app.store.config("CS-VAR")}
    assert values == {("OCPPCommCtrlr", "HeartbeatInterval"): "600", ("EVSE", "Power"): "42"}


def _local_list(version: str, version_number: int, kind: str, entries: list[Any]) -> dict[str, Any]:
    """A SendLocalList payload; ``entries`` are (token, status or None to remove, group)."""
    items: list[dict[str, Any]] = []
    for token, status, group in entries:
        if version == "1.6":
            item: dict[str, Any] = {"idTag": token}
            if status is not None:
                item["idTagInfo"] = {"status": status} | ({"parentIdTag": group} if group else {})
        else:
            item = {"idToken": {"idToken": token, "type": "ISO14443"}}
            if status is not None:
                info: dict[str, Any] = {"status": status}
                if group:
                    info["groupIdToken"] = {"idToken": group, "type": "Central"}
                item["idTokenInfo"] = info
        items.append(item)
    number = "listVersion" if version == "1.6" else "versionNumber"
    return {number: version_number, "updateType": kind, "localAuthorizationList": items}


async def test_local_list_full_then_differential(app: App, version: str) -> None:
    full = [
        ("DRIVER-1", "Accepted", None),
        ("DRIVER-2", "Accepted", None),
        ("FLEET-9", "Accepted", "FLEET"),
    ]
    differential = [
        ("DRIVER-2", "Blocked", None),
        ("FLEET-9", None, None),
        ("DRIVER-3", "Accepted", None),
    ]
    async with connect(app.server.port, "CS-LL", version) as cp:
        await Driver(cp, version).boot()
        await app.commands.send("CS-LL", "SendLocalList", _local_list(version, 1, "Full", full))
        assert await app.store.local_list_version("CS-LL") == 1
        assert [(e.id_token, e.group) for e in await app.store.local_list("CS-LL")] == [
            ("DRIVER-1", None),
            ("DRIVER-2", None),
            ("FLEET-9", "FLEET"),
        ]
        await app.commands.send(
            "CS-LL", "SendLocalList", _local_list(version, 2, "Differential", differential)
        )
    assert await app.store.local_list_version("CS-LL") == 2
    assert [(e.id_token, e.status) for e in await app.store.local_list("CS-LL")] == [
        ("DRIVER-1", AuthorizationStatus.ACCEPTED),
        ("DRIVER-2", AuthorizationStatus.BLOCKED),
        ("DRIVER-3", AuthorizationStatus.ACCEPTED),
    ]


async def test_reservation_made_then_cancelled(app: App, version: str) -> None:
    reserve = dict(PAYLOADS[version]["ReserveNow"])
    reservation_id = reserve["reservationId" if version == "1.6" else "id"]
    async with connect(app.server.port, "CS-RES", version) as cp:
        await Driver(cp, version).boot()
        await app.commands.send("CS-RES", "ReserveNow", reserve)
        made = await app.store.get_reservation(reservation_id)
        assert made is not None
        assert (made.station_id, made.evse_id, made.id_token, made.status) == (
            "CS-RES",
            1,
            "DRIVER-1",
            "Accepted",
        )
        assert made.expires_at == datetime(2030, 6, 1, 12, tzinfo=UTC)
        await app.commands.send("CS-RES", "CancelReservation", {"reservationId": reservation_id})
    cancelled = await app.store.get_reservation(reservation_id)
    assert cancelled is not None and cancelled.status == "Cancelled"


# --- remote start and stop, end to end --------------------------------------------------------


async def test_remote_start_then_remote_stop(app: App, version: str) -> None:
    await app.store.save_token(IdToken("DRIVER-1"))
    start_action, stop_action = (
        ("RemoteStartTransaction", "RemoteStopTransaction")
        if version == "1.6"
        else ("RequestStartTransaction", "RequestStopTransaction")
    )
    async with connect(app.server.port, "CS-RS", version) as cp:
        station = Driver(cp, version)
        await station.boot()
        start = await app.commands.send("CS-RS", start_action, PAYLOADS[version][start_action])
        assert start.response == {"status": "Accepted"}
        assert cp.received[-1][0] == start_action
        assert (
            cp.received[-1][1].get("id_tag") or cp.received[-1][1]["id_token"]["id_token"]
        ) == "DRIVER-1"
        tx_id, status = await station.start("DRIVER-1", 1000, tx_id="tx-remote")
        assert status == "Accepted"
        tx = await app.store.find_transaction("CS-RS", tx_id)
        assert tx is not None and tx.state is TransactionState.ACTIVE
        stop_payload: dict[str, Any] = {"transactionId": int(tx_id) if version == "1.6" else tx_id}
        stop = await app.commands.send("CS-RS", stop_action, stop_payload)
        assert stop.response == {"status": "Accepted"}
        assert cp.received[-1] == (stop_action, {"transaction_id": stop_payload["transactionId"]})
        await station.stop(tx_id, 4000, tag="DRIVER-1")
    tx = await app.store.find_transaction("CS-RS", tx_id)
    assert tx is not None and tx.state is TransactionState.ENDED


# --- error paths ------------------------------------------------------------------------------


class Refusing16(Station16):  # type: ignore[misc]
    """Answers Reset with a CALLERROR; DataTransfer "slow" only after the CSMS gave up."""

    @on("Reset")
    def on_Reset(self, **kwargs: Any) -> Any:  # the ocpp package routes by name
        self.received.append(("Reset", kwargs))
        raise NotSupportedError("Reset is disabled on this unit", {"reason": "maintenance"})

    @on("DataTransfer")
    async def on_DataTransfer(self, **kwargs: Any) -> Any:
        self.received.append(("DataTransfer", kwargs))
        if kwargs.get("message_id") == "slow":
            await asyncio.sleep(0.8)
            return result16.DataTransfer(status="Accepted", data="late")
        return result16.DataTransfer(status="Accepted", data="fresh")


class Refusing201(Station201):  # type: ignore[misc]
    """The same misbehaviour in OCPP 2.0.1."""

    @on("Reset")
    def on_Reset(self, **kwargs: Any) -> Any:
        self.received.append(("Reset", kwargs))
        raise NotSupportedError("Reset is disabled on this unit", {"reason": "maintenance"})

    @on("DataTransfer")
    async def on_DataTransfer(self, **kwargs: Any) -> Any:
        self.received.append(("DataTransfer", kwargs))
        if kwargs.get("message_id") == "slow":
            await asyncio.sleep(0.8)
            return result201.DataTransfer(status="Accepted", data="late")
        return result201.DataTransfer(status="Accepted", data="fresh")


@asynccontextmanager
async def connect_refusing(port: int, station_id: str, version: str) -> AsyncIterator[Any]:
    station_class = Refusing16 if version == "1.6" else Refusing201
    async with connect(port, station_id, version, station_class=station_class) as cp:
        yield cp


async def test_invalid_payload_is_refused_before_sending(app: App, version: str) -> None:
    bad = (
        {"connectorId": 1, "idTag": "A-TAG-LONGER-THAN-20-CHARS"}
        if version == "1.6"
        else {"idToken": {"idToken": "DRIVER-1", "type": "Barcode"}, "remoteStartId": 1}
    )
    action = "RemoteStartTransaction" if version == "1.6" else "RequestStartTransaction"
    async with connect(app.server.port, "CS-INV", version) as cp:
        await Driver(cp, version).boot()
        with pytest.raises(CommandInvalidError, match=r"idTag|type"):
            await app.commands.send("CS-INV", action, bad)
        with pytest.raises(CommandInvalidError, match="missing required field"):
            await app.commands.send("CS-INV", "Reset", {})
        with pytest.raises(CommandInvalidError, match="not an operation a CSMS sends"):
            await app.commands.send("CS-INV", "BootNotification", {})
        with pytest.raises(CommandInvalidError):
            await app.commands.send("CS-INV", "NoSuchOperation", {})
        await Driver(cp, version).heartbeat()  # a round trip: anything sent would have arrived
    assert cp.received == []


async def test_station_not_connected(app: App) -> None:
    with pytest.raises(StationOfflineError):
        await app.commands.send("CS-NOWHERE", "Reset", {"type": "Soft"})
    async with connect(app.server.port, "CS-GONE", "1.6") as cp:
        await Driver(cp, "1.6").boot()

    async def gone() -> bool:
        return app.server.get("CS-GONE") is None

    await wait_for(gone)
    with pytest.raises(StationOfflineError):
        await app.commands.send("CS-GONE", "Reset", {"type": "Soft"})


async def test_offline_command_is_recorded(app: App) -> None:
    with pytest.raises(StationOfflineError):
        await app.commands.send("CS-NOWHERE", "Reset", {"type": "Soft"})
    records = await app.store.commands("CS-NOWHERE")
    assert [(r.action, r.outcome, r.request, r.response) for r in records] == [
        ("Reset", "offline", {"type": "Soft"}, None)
    ]


async def test_station_answers_with_a_call_error(app: App, version: str) -> None:
    reset = PAYLOADS[version]["Reset"]
    async with connect_refusing(app.server.port, "CS-ERR", version) as cp:
        await Driver(cp, version).boot()
        with pytest.raises(CommandRejectedError) as caught:
            await app.commands.send("CS-ERR", "Reset", reset)
        assert cp.received == [("Reset", camel_to_snake_case(reset))]
    assert caught.value.code == "NotSupported"
    assert caught.value.description == "Reset is disabled on this unit"
    assert caught.value.details == {"reason": "maintenance"}
    [record] = await app.store.commands("CS-ERR")
    assert (record.action, record.outcome, record.error_code, record.response) == (
        "Reset",
        "error",
        "NotSupported",
        None,
    )


async def test_timeout_then_the_next_command_gets_its_own_answer(app: App, version: str) -> None:
    slow = {"vendorId": "com.acme", "messageId": "slow"}
    quick = {"vendorId": "com.acme", "messageId": "quick"}
    async with connect_refusing(app.server.port, "CS-TO", version) as cp:
        await Driver(cp, version).boot()
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(CommandTimeoutError):
            await app.commands.send("CS-TO", "DataTransfer", slow, timeout=0.3)
        assert 0.25 <= loop.time() - began < 0.75  # gave up on time, not when the reply came
        # The late reply ("late") arrives while this call is outstanding; it must not answer it.
        result = await app.commands.send("CS-TO", "DataTransfer", quick)
        assert result.response == {"status": "Accepted", "data": "fresh"}
        assert [kw["message_id"] for _, kw in cp.received] == ["slow", "quick"]
    outcomes = [(r.request["messageId"], r.outcome) for r in await app.store.commands("CS-TO")]
    assert outcomes == [("quick", "answered"), ("slow", "timeout")]
