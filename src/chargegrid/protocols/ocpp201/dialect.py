"""OCPP 2.0.1 as the RPC session sees it (OCPP 2.0.1 Part 4 and Part 2)."""

from __future__ import annotations

from chargegrid.protocols.ocpp201.messages import ACTIONS
from chargegrid.protocols.ocppj.dialect import ERROR_CODES_201, Dialect

#: Messages a charging station initiates (OCPP 2.0.1 Part 2, by functional block).
STATION_ACTIONS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "ClearedChargingLimit",
        "DataTransfer",
        "FirmwareStatusNotification",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "SignCertificate",
        "StatusNotification",
        "TransactionEvent",
    }
)

DIALECT = Dialect(
    version="2.0.1",
    subprotocol="ocpp2.0.1",
    actions=ACTIONS,
    station_actions=STATION_ACTIONS,
    error_codes=ERROR_CODES_201,
)
