"""OCPP 1.6J: the handlers of every message a charge point sends (OCPP 1.6 section 4 and the
security whitepaper), each turning its request into central-system use cases."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import structlog

from chargegrid.domain.certificates import CertificateUse
from chargegrid.domain.model import (
    Authorization,
    AuthorizationStatus,
)
from chargegrid.protocols.ocpp16 import mapping
from chargegrid.protocols.ocpp16 import messages as m
from chargegrid.protocols.ocppj.times import utc
from chargegrid.protocols.ocppj.validation import require_non_negative
from chargegrid.service.central import BootInfo, CentralSystem
from chargegrid.service.certificates import Certificates
from chargegrid.service.ocpp.context import Handler, StationContext
from chargegrid.service.ocpp.pnc16 import VENDOR_ID as PNC_VENDOR_ID
from chargegrid.service.ocpp.pnc16 import Pnc16
from chargegrid.service.ports import DataTransferRecord, NewTransaction

log = structlog.get_logger(__name__)


class Ocpp16Handlers:
    """Bound to one :class:`CentralSystem`; :meth:`router` lists them by action."""

    def __init__(
        self,
        central: CentralSystem,
        certificates: Certificates | None = None,
        plug_and_charge: Pnc16 | None = None,
    ) -> None:
        self.central = central
        self.certificates = certificates
        self.pnc = plug_and_charge

    def router(self) -> dict[str, Handler]:
        return {
            "Authorize": self.authorize,
            "BootNotification": self.boot_notification,
            "DataTransfer": self.data_transfer,
            "DiagnosticsStatusNotification": self.diagnostics_status,
            "FirmwareStatusNotification": self.firmware_status,
            "Heartbeat": self.heartbeat,
            "LogStatusNotification": self.log_status,
            "MeterValues": self.meter_values,
            "SecurityEventNotification": self.security_event,
            "SignCertificate": self.sign_certificate,
            "SignedFirmwareStatusNotification": self.signed_firmware_status,
            "StartTransaction": self.start_transaction,
            "StatusNotification": self.status_notification,
            "StopTransaction": self.stop_transaction,
        }

    def _now(self) -> datetime:
        return self.central.clock.now()

    async def boot_notification(
        self, ctx: StationContext, req: m.BootNotificationRequest
    ) -> m.BootNotificationResponse:
        """OCPP 1.6 4.2."""
        decision = await self.central.boot(
            BootInfo(
                station_id=ctx.station_id,
                ocpp_version="1.6",
                vendor=req.charge_point_vendor,
                model=req.charge_point_model,
                serial_number=req.charge_point_serial_number or req.charge_box_serial_number,
                firmware_version=req.firmware_version,
            )
        )
        ctx.registration = decision.registration
        return m.BootNotificationResponse(
            status=decision.registration.value,
            current_time=self._now(),
            interval=decision.interval_s,
        )

    async def heartbeat(self, ctx: StationContext, req: m.HeartbeatRequest) -> m.HeartbeatResponse:
        """OCPP 1.6 4.6."""
        await self.central.heartbeat(ctx.station_id)
        return m.HeartbeatResponse(current_time=self._now())

    async def status_notification(
        self, ctx: StationContext, req: m.StatusNotificationRequest
    ) -> m.StatusNotificationResponse:
        """OCPP 1.6 4.9."""
        require_non_negative(connectorId=req.connector_id)
        await self.central.status(mapping.status_change(ctx.station_id, req, self._now()))
        return m.StatusNotificationResponse()

    async def authorize(self, ctx: StationContext, req: m.AuthorizeRequest) -> m.AuthorizeResponse:
        """OCPP 1.6 4.1."""
        auth = await self.central.authorize(req.id_tag)
        return m.AuthorizeResponse(id_tag_info=mapping.id_tag_info(auth))

    async def start_transaction(
        self, ctx: StationContext, req: m.StartTransactionRequest
    ) -> m.StartTransactionResponse:
        """OCPP 1.6 4.8: the transaction is kept whatever the token's standing; the station
        stops it itself when told the token is not Accepted."""
        require_non_negative(connectorId=req.connector_id)
        tx, auth = await self.central.start_transaction(
            NewTransaction(
                station_id=ctx.station_id,
                station_tx_id=None,
                evse_id=req.connector_id,
                connector_id=req.connector_id,
                id_token=req.id_tag,
                started_at=utc(req.timestamp) or self._now(),
                meter_start_wh=Decimal(req.meter_start),
                reservation_id=req.reservation_id,
            )
        )
        auth = auth or Authorization(AuthorizationStatus.INVALID)
        return m.StartTransactionResponse(
            transaction_id=tx.id, id_tag_info=mapping.id_tag_info(auth)
        )

    async def meter_values(
        self, ctx: StationContext, req: m.MeterValuesRequest
    ) -> m.MeterValuesResponse:
        """OCPP 1.6 4.7."""
        require_non_negative(connectorId=req.connector_id)
        tx = None
        if req.transaction_id is not None:
            tx = await self.central.find_transaction(ctx.station_id, str(req.transaction_id))
            if tx is None:
                log.warning(
                    "meter values for an unknown transaction",
                    station_id=ctx.station_id,
                    transaction_id=req.transaction_id,
                )
        await self.central.meter_values(
            ctx.station_id,
            tx,
            req.connector_id,
            req.connector_id,
            mapping.readings(req.meter_value),
        )
        return m.MeterValuesResponse()

    async def stop_transaction(
        self, ctx: StationContext, req: m.StopTransactionRequest
    ) -> m.StopTransactionResponse:
        """OCPP 1.6 4.10: always accepted, so the station can clear it from its queue."""
        tx = await self.central.find_transaction(ctx.station_id, str(req.transaction_id))
        auth = (
            await self.central.authorize(req.id_tag, own_transaction=True) if req.id_tag else None
        )
        readings = mapping.readings(req.transaction_data)
        if tx is None:
            log.warning(
                "stop for an unknown transaction",
                station_id=ctx.station_id,
                transaction_id=req.transaction_id,
            )
            await self.central.meter_values(ctx.station_id, None, 0, 0, readings)
        else:
            await self.central.meter_values(
                ctx.station_id, tx, tx.evse_id, tx.connector_id, readings
            )
            latest = await self.central.get_transaction(tx.id) or tx
            await self.central.stop_transaction(
                latest,
                stopped_at=utc(req.timestamp) or self._now(),
                meter_stop_wh=Decimal(req.meter_stop),
                reason=req.reason or "Local",
            )
        return m.StopTransactionResponse(
            id_tag_info=mapping.id_tag_info(auth) if auth is not None else None
        )

    async def data_transfer(
        self, ctx: StationContext, req: m.DataTransferRequest
    ) -> m.DataTransferResponse:
        """OCPP 1.6 4.3: kept; Plug & Charge (:mod:`.pnc16`) is the one vendor extension
        known, anything else is UnknownVendorId."""
        await self.central.store.record_data_transfer(
            DataTransferRecord(
                ctx.station_id, "from-station", req.vendor_id, req.message_id, req.data, self._now()
            )
        )
        if self.pnc is not None and req.vendor_id == PNC_VENDOR_ID:
            return await self.pnc.handle(ctx, req.message_id, req.data)
        return m.DataTransferResponse(status="UnknownVendorId")

    async def diagnostics_status(
        self, ctx: StationContext, req: m.DiagnosticsStatusNotificationRequest
    ) -> m.DiagnosticsStatusNotificationResponse:
        await self.central.report(ctx.station_id, "diagnostics", req.status, None)
        return m.DiagnosticsStatusNotificationResponse()

    async def firmware_status(
        self, ctx: StationContext, req: m.FirmwareStatusNotificationRequest
    ) -> m.FirmwareStatusNotificationResponse:
        await self.central.report(ctx.station_id, "firmware", req.status, None)
        return m.FirmwareStatusNotificationResponse()

    async def log_status(
        self, ctx: StationContext, req: m.LogStatusNotificationRequest
    ) -> m.LogStatusNotificationResponse:
        await self.central.report(ctx.station_id, "log", req.status, req.request_id)
        return m.LogStatusNotificationResponse()

    async def signed_firmware_status(
        self, ctx: StationContext, req: m.SignedFirmwareStatusNotificationRequest
    ) -> m.SignedFirmwareStatusNotificationResponse:
        await self.central.report(ctx.station_id, "firmware", req.status, req.request_id)
        return m.SignedFirmwareStatusNotificationResponse()

    async def security_event(
        self, ctx: StationContext, req: m.SecurityEventNotificationRequest
    ) -> m.SecurityEventNotificationResponse:
        """Security whitepaper 4.x SecurityEventNotification."""
        await self.central.security_event(
            ctx.station_id, req.type, utc(req.timestamp), req.tech_info
        )
        return m.SecurityEventNotificationResponse()

    async def sign_certificate(
        self, ctx: StationContext, req: m.SignCertificateRequest
    ) -> m.SignCertificateResponse:
        """Security whitepaper 3 (the Charge Point certificate): :mod:`..certificates`."""
        accepted = self.certificates is not None and await self.certificates.sign_request(
            ctx.station_id, "1.6", req.csr, CertificateUse.CHARGING_STATION
        )
        return m.SignCertificateResponse(status="Accepted" if accepted else "Rejected")
