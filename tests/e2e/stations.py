"""Charging stations built on the `ocpp` package (The Mobility House): a peer we did not write.

Each answers every CSMS-initiated operation of its version with a valid response and records what
it received, so tests can check that a command reached it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

ACCEPTED = {"status": "Accepted"}

RESPONSES_16: dict[str, dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]] = {
    "CancelReservation": ACCEPTED,
    "ChangeAvailability": ACCEPTED,
    "ChangeConfiguration": ACCEPTED,
    "ClearCache": ACCEPTED,
    "ClearChargingProfile": ACCEPTED,
    "DataTransfer": {"status": "Accepted", "data": "pong"},
    "GetCompositeSchedule": ACCEPTED,
    "GetConfiguration": {
        "configuration_key": [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
        ]
    },
    "GetDiagnostics": {"file_name": "diagnostics.zip"},
    "GetLocalListVersion": {"list_version": 0},
    "RemoteStartTransaction": ACCEPTED,
    "RemoteStopTransaction": ACCEPTED,
    "ReserveNow": ACCEPTED,
    "Reset": ACCEPTED,
    "SendLocalList": ACCEPTED,
    "SetChargingProfile": ACCEPTED,
    "TriggerMessage": ACCEPTED,
    "UnlockConnector": {"status": "Unlocked"},
    "UpdateFirmware": {},
    "CertificateSigned": ACCEPTED,
    "DeleteCertificate": ACCEPTED,
    "ExtendedTriggerMessage": ACCEPTED,
    "GetInstalledCertificateIds": ACCEPTED,
    "GetLog": {"status": "Accepted", "filename": "log.txt"},
    "InstallCertificate": ACCEPTED,
    "SignedUpdateFirmware": ACCEPTED,
}


def _variables(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "get_variable_result": [
            {
                "attribute_status": "Accepted",
                "component": d["component"],
                "variable": d["variable"],
                "attribute_value": "42",
            }
            for d in kw["get_variable_data"]
        ]
    }


def _set_variables(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "set_variable_result": [
            {"attribute_status": "Accepted", "component": d["component"], "variable": d["variable"]}
            for d in kw["set_variable_data"]
        ]
    }


def _monitoring(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "set_monitoring_result": [
            {
                "status": "Accepted",
                "type": d["type"],
                "severity": d["severity"],
                "component": d["component"],
                "variable": d["variable"],
            }
            for d in kw["set_monitoring_data"]
        ]
    }


def _clear_monitoring(kw: dict[str, Any]) -> dict[str, Any]:
    return {"clear_monitoring_result": [{"status": "Accepted", "id": i} for i in kw["id"]]}


RESPONSES_201: dict[str, dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]] = {
    "CancelReservation": ACCEPTED,
    "CertificateSigned": ACCEPTED,
    "ChangeAvailability": ACCEPTED,
    "ClearCache": ACCEPTED,
    "ClearChargingProfile": ACCEPTED,
    "ClearDisplayMessage": ACCEPTED,
    "ClearVariableMonitoring": _clear_monitoring,
    "CostUpdated": {},
    "CustomerInformation": ACCEPTED,
    "DataTransfer": {"status": "Accepted", "data": "pong"},
    "DeleteCertificate": ACCEPTED,
    "GetBaseReport": ACCEPTED,
    "GetChargingProfiles": ACCEPTED,
    "GetCompositeSchedule": ACCEPTED,
    "GetDisplayMessages": ACCEPTED,
    "GetInstalledCertificateIds": ACCEPTED,
    "GetLocalListVersion": {"version_number": 0},
    "GetLog": {"status": "Accepted", "filename": "log.txt"},
    "GetMonitoringReport": ACCEPTED,
    "GetReport": ACCEPTED,
    "GetTransactionStatus": {"messages_in_queue": False},
    "GetVariables": _variables,
    "InstallCertificate": ACCEPTED,
    "PublishFirmware": ACCEPTED,
    "RequestStartTransaction": ACCEPTED,
    "RequestStopTransaction": ACCEPTED,
    "ReserveNow": ACCEPTED,
    "Reset": ACCEPTED,
    "SendLocalList": ACCEPTED,
    "SetChargingProfile": ACCEPTED,
    "SetDisplayMessage": ACCEPTED,
    "SetMonitoringBase": ACCEPTED,
    "SetMonitoringLevel": ACCEPTED,
    "SetNetworkProfile": ACCEPTED,
    "SetVariableMonitoring": _monitoring,
    "SetVariables": _set_variables,
    "TriggerMessage": ACCEPTED,
    "UnlockConnector": {"status": "Unlocked"},
    "UnpublishFirmware": {"status": "Unpublished"},
    "UpdateFirmware": ACCEPTED,
}


def _answering(base: type, results: Any, table: dict[str, Any]) -> type:
    """A ChargePoint subclass with one @on handler per CSMS-initiated action in ``table``."""
    namespace: dict[str, Any] = {}
    for action, answer in table.items():

        def handler(self: Any, _action: str = action, _answer: Any = answer, **kwargs: Any) -> Any:
            self.received.append((_action, kwargs))
            payload = _answer(kwargs) if callable(_answer) else _answer
            return getattr(results, _action)(**payload)

        handler.__name__ = f"on_{action}"  # the ocpp package routes by function name
        namespace[handler.__name__] = on(action)(handler)
    cls = type(f"Answering{base.__name__}", (base,), namespace)
    return cls


_Station16 = _answering(ChargePoint16, result16, RESPONSES_16)
_Station201 = _answering(ChargePoint201, result201, RESPONSES_201)


class Station16(_Station16):  # type: ignore[misc,valid-type]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []


class Station201(_Station201):  # type: ignore[misc,valid-type]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []


SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}


@asynccontextmanager
async def connect(
    port: int,
    station_id: str,
    version: str,
    *,
    password: str | None = None,
    path: str = "/ocpp",
    station_class: type[Any] | None = None,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Any]:
    """Connect a station of ``version`` and run its message loop until the block ends.

    ``station_class``: a ChargePoint of that version other than Station16 / Station201 (one
    that answers differently). ``tls``: connect with wss:// (``port`` is then the TLS port)."""
    headers = {}
    if password is not None:
        token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    ws = await websockets.connect(
        f"{'wss' if tls else 'ws'}://127.0.0.1:{port}{path}/{station_id}",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        additional_headers=headers,
        ssl=tls,
        open_timeout=5,
    )
    cls = station_class or (Station16 if version == "1.6" else Station201)
    cp = cls(station_id, ws, response_timeout=5)
    task = asyncio.create_task(cp.start())
    try:
        yield cp
    finally:
        await ws.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


# --- what a station sends, in either version ----------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Driver:
    """The same station behaviour expressed in OCPP 1.6 or 2.0.1 messages."""

    def __init__(self, cp: Any, version: str) -> None:
        self.cp = cp
        self.version = version
        self.token_type = "ISO14443"  # 2.0.1 IdTokenType of the tokens it presents
        self._seq = 0

    async def boot(self, reason: str = "PowerUp") -> str:
        if self.version == "1.6":
            res = await self.cp.call(
                call16.BootNotification(
                    charge_point_model="Wallbox-1",
                    charge_point_vendor="ACME",
                    firmware_version="1.2.3",
                    charge_point_serial_number="SN-1",
                )
            )
        else:
            res = await self.cp.call(
                call201.BootNotification(
                    charging_station={
                        "model": "Wallbox-2",
                        "vendor_name": "ACME",
                        "firmware_version": "2.0.0",
                        "serial_number": "SN-2",
                    },
                    reason=reason,
                )
            )
        return str(res.status)

    async def heartbeat(self) -> str:
        res = await self.cp.call(
            call16.Heartbeat() if self.version == "1.6" else call201.Heartbeat()
        )
        return str(res.current_time)

    async def status(self, connector: int, status: str) -> None:
        if self.version == "1.6":
            await self.cp.call(
                call16.StatusNotification(
                    connector_id=connector, error_code="NoError", status=status, timestamp=now_iso()
                )
            )
        else:
            await self.cp.call(
                call201.StatusNotification(
                    timestamp=now_iso(), connector_status=status, evse_id=connector, connector_id=1
                )
            )

    async def authorize(self, tag: str) -> str:
        if self.version == "1.6":
            res = await self.cp.call(call16.Authorize(id_tag=tag))
            return str(res.id_tag_info["status"])
        res = await self.cp.call(
            call201.Authorize(id_token={"id_token": tag, "type": self.token_type})
        )
        return str(res.id_token_info["status"])

    async def start(
        self, tag: str, meter_wh: int, connector: int = 1, tx_id: str = "tx-1"
    ) -> tuple[str, str]:
        """Start a transaction; return (transaction id as the station knows it, token status)."""
        if self.version == "1.6":
            res = await self.cp.call(
                call16.StartTransaction(
                    connector_id=connector, id_tag=tag, meter_start=meter_wh, timestamp=now_iso()
                )
            )
            return str(res.transaction_id), str(res.id_tag_info["status"])
        res = await self.cp.call(
            self._event("Started", tx_id, meter_wh, tag, connector, "Authorized")
        )
        return tx_id, str(res.id_token_info["status"]) if res.id_token_info else "none"

    def _event(
        self,
        kind: str,
        tx_id: str,
        meter_wh: int,
        tag: str | None,
        connector: int,
        trigger: str,
        reason: str | None = None,
    ) -> Any:
        self._seq += 1
        info: dict[str, Any] = {"transaction_id": tx_id, "charging_state": "Charging"}
        if reason:
            info["stopped_reason"] = reason
        return call201.TransactionEvent(
            event_type=kind,
            timestamp=now_iso(),
            trigger_reason=trigger,
            seq_no=self._seq,
            transaction_info=info,
            evse={"id": connector, "connector_id": 1},
            id_token={"id_token": tag, "type": self.token_type} if tag else None,
            meter_value=[
                {
                    "timestamp": now_iso(),
                    "sampled_value": [
                        {
                            "value": meter_wh,
                            "measurand": "Energy.Active.Import.Register",
                            "unit_of_measure": {"unit": "Wh"},
                        },
                        {
                            "value": 7200.5,
                            "measurand": "Power.Active.Import",
                            "unit_of_measure": {"unit": "W"},
                        },
                        {
                            "value": 16.1,
                            "measurand": "Current.Import",
                            "phase": "L1",
                            "unit_of_measure": {"unit": "A"},
                        },
                    ],
                }
            ],
        )

    async def meter(self, tx_id: str, meter_wh: int, connector: int = 1) -> None:
        if self.version == "1.6":
            await self.cp.call(
                call16.MeterValues(
                    connector_id=connector,
                    transaction_id=int(tx_id),
                    meter_value=[
                        {
                            "timestamp": now_iso(),
                            "sampled_value": [
                                {
                                    "value": str(meter_wh),
                                    "measurand": "Energy.Active.Import.Register",
                                    "unit": "Wh",
                                    "context": "Sample.Periodic",
                                },
                                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                                {
                                    "value": "16.1",
                                    "measurand": "Current.Import",
                                    "phase": "L1",
                                    "unit": "A",
                                },
                            ],
                        }
                    ],
                )
            )
        else:
            await self.cp.call(
                self._event("Updated", tx_id, meter_wh, None, connector, "MeterValuePeriodic")
            )

    async def stop(
        self, tx_id: str, meter_wh: int, tag: str | None = None, connector: int = 1
    ) -> None:
        if self.version == "1.6":
            await self.cp.call(
                call16.StopTransaction(
                    meter_stop=meter_wh,
                    timestamp=now_iso(),
                    transaction_id=int(tx_id),
                    id_tag=tag,
                    reason="EVDisconnected",
                )
            )
        else:
            await self.cp.call(
                self._event(
                    "Ended", tx_id, meter_wh, tag, connector, "EVDeparted", reason="EVDisconnected"
                )
            )
