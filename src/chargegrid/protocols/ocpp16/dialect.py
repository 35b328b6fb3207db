"""OCPP 1.6J as the RPC session sees it (OCPP-J 1.6, OCPP 1.6 sections 4-5, security whitepaper)."""

from __future__ import annotations

from chargegrid.protocols.ocpp16.messages import ACTIONS
from chargegrid.protocols.ocppj.dialect import ERROR_CODES_16, Dialect

#: Messages a charge point initiates (OCPP 1.6 section 4, whitepaper section 4).
STATION_ACTIONS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
    }
)

DIALECT = Dialect(
    version="1.6",
    subprotocol="ocpp1.6",
    actions=ACTIONS,
    station_actions=STATION_ACTIONS,
    error_codes=ERROR_CODES_16,
)
