"""OCPP 2.0.1: the handlers of every message a charging station sends (OCPP 2.0.1 Part 2),
each turning its request into central-system use cases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
import structlog
from msgspec.structs import replace

from chargegrid.domain import autocharge, events
from chargegrid.domain.certificates import CertificateUse
from chargegrid.domain.metering import energy_register_wh
from chargegrid.domain.model import (
    Transaction,
)
from chargegrid.protocols.ocpp201 import mapping
from chargegrid.protocols.ocpp201 import messages as m
from chargegrid.protocols.ocppj.times import utc
from chargegrid.protocols.ocppj.validation import require_non_negative
from chargegrid.protocols.ocsp import HashData
from chargegrid.service.central import BootInfo, CentralSystem
from chargegrid.service.certificates import Certificates
from chargegrid.service.ocpp.context import Handler, StationContext
from chargegrid.service.plug_and_charge import CertificateStatus, PlugAndCharge
from chargegrid.service.ports import DataTransferRecord, NewTransaction

log = structlog.get_logger(__name__)


class Ocpp201Handlers:
    """Bound to one :class:`CentralSystem`; :meth:`router` lists them by action."""

    def __init__(
        self,
        central: CentralSystem,
        certificates: Certificates | None = None,
        plug_and_charge: PlugAndCharge | None = None,
    ) -> None:
        self.central = central
        self.certificates = certificates
        self.pnc = plug_and_charge

    def router(self) -> dict[str, Handler]:
        handlers: dict[str, Handler] = {
            "Authorize": self.authorize,
            "BootNotification": self.boot_notification,
            "DataTransfer": self.data_transfer,
            "FirmwareStatusNotification": self.firmware_status,
            "Get15118EVCertificate": self.get_15118_ev_certificate,
            "GetCertificateStatus": self.get_certificate_status,
            "Heartbeat": self.heartbeat,
            "LogStatusNotification": self.log_status,
            "MeterValues": self.meter_values,
            "NotifyEVChargingNeeds": self.notify_ev_charging_needs,
            "NotifyEVChargingSchedule": self.notify_ev_charging_schedule,
            "NotifyReport": self.notify_report,
            "PublishFirmwareStatusNotification": self.publish_firmware_status,
            "ReservationStatusUpdate": self.reservation_status,
            "SecurityEventNotification": self.security_event,
            "SignCertificate": self.sign_certificate,
            "StatusNotification": self.status_notification,
            "TransactionEvent": self.transaction_event,
        }
        # Notifications whose content is logged and acknowledged with an empty response;
        # the features that act on them (smart charging, monitoring, display) come later.
        for action, response in (
            ("ClearedChargingLimit", m.ClearedChargingLimitResponse),
            ("NotifyChargingLimit", m.NotifyChargingLimitResponse),
            ("NotifyCustomerInformation", m.NotifyCustomerInformationResponse),
            ("NotifyDisplayMessages", m.NotifyDisplayMessagesResponse),
            ("NotifyEvent", m.NotifyEventResponse),
            ("NotifyMonitoringReport", m.NotifyMonitoringReportResponse),
            ("ReportChargingProfiles", m.ReportChargingProfilesResponse),
        ):
            handlers[action] = _acknowledge(action, response)
        return handlers

    def _now(self) -> datetime:
        return self.central.clock.now()

    async def boot_notification(
        self, ctx: StationContext, req: m.BootNotificationRequest
    ) -> m.BootNotificationResponse:
        """B01-B03."""
        cs = req.charging_station
        decision = await self.central.boot(
            BootInfo(
                station_id=ctx.station_id,
                ocpp_version="2.0.1",
                vendor=cs.vendor_name,
                model=cs.model,
                serial_number=cs.serial_number,
                firmware_version=cs.firmware_version,
                reason=req.reason,
            )
        )
        ctx.registration = decision.registration
        return m.BootNotificationResponse(
            current_time=self._now(),
            interval=decision.interval_s,
            status=decision.registration.value,
        )

    async def heartbeat(self, ctx: StationContext, req: m.HeartbeatRequest) -> m.HeartbeatResponse:
        """G02."""
        await self.central.heartbeat(ctx.station_id)
        return m.HeartbeatResponse(current_time=self._now())

    async def status_notification(
        self, ctx: StationContext, req: m.StatusNotificationRequest
    ) -> m.StatusNotificationResponse:
        """G01."""
        require_non_negative(evseId=req.evse_id, connectorId=req.connector_id)
        await self.central.status(mapping.status_change(ctx.station_id, req))
        return m.StatusNotificationResponse()

    async def authorize(self, ctx: StationContext, req: m.AuthorizeRequest) -> m.AuthorizeResponse:
        """C01. NoAuthorization tokens are always accepted (C01.FR.xx: no authorization)."""
        if req.id_token.type == "NoAuthorization":
            return m.AuthorizeResponse(id_token_info=m.IdTokenInfoType(status="Accepted"))
        auth = await self.central.authorize(_token_value(req.id_token))
        info = mapping.id_token_info(auth)
        if req.certificate is None and not req.iso15118_certificate_hash_data:
            return m.AuthorizeResponse(id_token_info=info)
        # C07: Plug & Charge. A contract that fails its check does not charge.
        status = await self._contract_status(ctx, req)
        if status != "Accepted":
            info = msgspec.structs.replace(info, status="Invalid")
        return m.AuthorizeResponse(id_token_info=info, certificate_status=status)

    async def _contract_status(
        self, ctx: StationContext, req: m.AuthorizeRequest
    ) -> CertificateStatus:
        if self.pnc is None:
            log.warning("Plug & Charge is off: contract not checked", station_id=ctx.station_id)
            return "NoCertificateAvailable"
        return await self.pnc.check_contract(
            req.id_token.id_token,
            [_hash_data(d) for d in req.iso15118_certificate_hash_data or ()],
            req.certificate,
            self.central.clock.now(),
        )

    async def transaction_event(
        self, ctx: StationContext, req: m.TransactionEventRequest
    ) -> m.TransactionEventResponse:
        """E01-E15. Started, Updated and Ended map onto the same transaction record; an Updated
        or Ended for a transaction whose Started was lost starts it, so nothing is dropped."""
        if req.evse is not None:
            require_non_negative(
                **{"evse.id": req.evse.id, "evse.connectorId": req.evse.connector_id}
            )
        info = req.transaction_info
        tx = await self.central.find_transaction(ctx.station_id, info.transaction_id)
        token = (
            _token_value(req.id_token)
            if req.id_token and req.id_token.type != "NoAuthorization"
            else None
        )
        readings = mapping.readings(req.meter_value)
        auth = None
        if tx is None:
            evse = req.evse
            tx, auth = await self.central.start_transaction(
                NewTransaction(
                    station_id=ctx.station_id,
                    station_tx_id=info.transaction_id,
                    evse_id=evse.id if evse else 0,
                    connector_id=(evse.connector_id or 1) if evse else 0,
                    id_token=token,
                    started_at=utc(req.timestamp),
                    meter_start_wh=energy_register_wh(readings),
                    reservation_id=req.reservation_id,
                    charging_state=info.charging_state,
                )
            )
        elif token is not None:
            auth = await self.central.authorize(token, own_transaction=True)
        if token is not None and token != tx.id_token:
            tx.id_token = token
            await self.central.save_transaction(tx)
        await self.central.meter_values(ctx.station_id, tx, tx.evse_id, tx.connector_id, readings)
        if info.charging_state is not None and info.charging_state != tx.charging_state:
            tx.charging_state = info.charging_state
            await self.central.save_transaction(tx)
        if req.event_type == "Ended":
            await self.central.stop_transaction(
                tx,
                stopped_at=utc(req.timestamp),
                meter_stop_wh=energy_register_wh(readings),
                reason=info.stopped_reason or "Local",
            )
        return m.TransactionEventResponse(
            id_token_info=mapping.id_token_info(auth) if auth is not None else None
        )

    async def meter_values(
        self, ctx: StationContext, req: m.MeterValuesRequest
    ) -> m.MeterValuesResponse:
        """J01: readings outside a transaction (or of the EVSE as a whole)."""
        require_non_negative(evseId=req.evse_id)
        tx: Transaction | None = None
        for active in await self.central.store.active_transactions(ctx.station_id):
            if active.evse_id == req.evse_id:
                tx = active
        await self.central.meter_values(
            ctx.station_id, tx, req.evse_id, 0, mapping.readings(req.meter_value)
        )
        return m.MeterValuesResponse()

    async def notify_report(
        self, ctx: StationContext, req: m.NotifyReportRequest
    ) -> m.NotifyReportResponse:
        """B07/B08: the device model, kept as configuration values."""
        values = mapping.report_values(ctx.station_id, req.report_data)
        if values:
            await self.central.store.save_config(ctx.station_id, values)
        return m.NotifyReportResponse()

    async def data_transfer(
        self, ctx: StationContext, req: m.DataTransferRequest
    ) -> m.DataTransferResponse:
        """P02: kept; no vendor extension is known, so UnknownVendorId."""
        data = req.data if isinstance(req.data, str) or req.data is None else _json(req.data)
        await self.central.store.record_data_transfer(
            DataTransferRecord(
                ctx.station_id, "from-station", req.vendor_id, req.message_id, data, self._now()
            )
        )
        return m.DataTransferResponse(status="UnknownVendorId")

    async def firmware_status(
        self, ctx: StationContext, req: m.FirmwareStatusNotificationRequest
    ) -> m.FirmwareStatusNotificationResponse:
        await self.central.report(ctx.station_id, "firmware", req.status, req.request_id)
        return m.FirmwareStatusNotificationResponse()

    async def publish_firmware_status(
        self, ctx: StationContext, req: m.PublishFirmwareStatusNotificationRequest
    ) -> m.PublishFirmwareStatusNotificationResponse:
        await self.central.report(ctx.station_id, "publish-firmware", req.status, req.request_id)
        return m.PublishFirmwareStatusNotificationResponse()

    async def log_status(
        self, ctx: StationContext, req: m.LogStatusNotificationRequest
    ) -> m.LogStatusNotificationResponse:
        await self.central.report(ctx.station_id, "log", req.status, req.request_id)
        return m.LogStatusNotificationResponse()

    async def reservation_status(
        self, ctx: StationContext, req: m.ReservationStatusUpdateRequest
    ) -> m.ReservationStatusUpdateResponse:
        """H02/H03: a reservation expired or was removed at the station."""
        reservation = await self.central.store.get_reservation(req.reservation_id)
        if reservation is not None and reservation.station_id == ctx.station_id:
            await self.central.store.save_reservation(
                replace(reservation, status=req.reservation_update_status)
            )
        return m.ReservationStatusUpdateResponse()

    async def security_event(
        self, ctx: StationContext, req: m.SecurityEventNotificationRequest
    ) -> m.SecurityEventNotificationResponse:
        """A04."""
        await self.central.security_event(
            ctx.station_id, req.type, utc(req.timestamp), req.tech_info
        )
        return m.SecurityEventNotificationResponse()

    async def sign_certificate(
        self, ctx: StationContext, req: m.SignCertificateRequest
    ) -> m.SignCertificateResponse:
        """A02/A03: :mod:`..certificates`; without ``certificateType``, the station's own."""
        use = CertificateUse(req.certificate_type or "ChargingStationCertificate")
        accepted = self.certificates is not None and await self.certificates.sign_request(
            ctx.station_id, "2.0.1", req.csr, use
        )
        return m.SignCertificateResponse(status="Accepted" if accepted else "Rejected")

    async def get_15118_ev_certificate(
        self, ctx: StationContext, req: m.Get15118EVCertificateRequest
    ) -> m.Get15118EVCertificateResponse:
        """M01/M02: forwarded to the contract-certificate provider (:mod:`..plug_and_charge`)."""
        if self.pnc is None:
            return m.Get15118EVCertificateResponse(status="Failed", exi_response="")
        answer = await self.pnc.ev_certificate(
            req.iso15118_schema_version, req.action, req.exi_request
        )
        return m.Get15118EVCertificateResponse(
            status=answer.status, exi_response=answer.exi_response
        )

    async def get_certificate_status(
        self, ctx: StationContext, req: m.GetCertificateStatusRequest
    ) -> m.GetCertificateStatusResponse:
        """M06: the OCSP request goes to the responder, its answer back (base64 DER)."""
        result = None
        if self.pnc is not None:
            result = await self.pnc.certificate_status(_hash_data(req.ocsp_request_data))
        if result is None or len(result) > 5500:  # the schema's bound on ocspResult
            return m.GetCertificateStatusResponse(status="Failed")
        return m.GetCertificateStatusResponse(status="Accepted", ocsp_result=result)

    async def notify_ev_charging_needs(
        self, ctx: StationContext, req: m.NotifyEVChargingNeedsRequest
    ) -> m.NotifyEVChargingNeedsResponse:
        """K15: a car's needs from ISO 15118. On an EVSE the load balancer steers they are
        Accepted and a charging profile follows (K15.FR.04, the balancer's next run);
        elsewhere Rejected, as no schedule will follow."""
        needs = req.charging_needs
        if not self.central.steers(ctx.station_id, req.evse_id):
            return m.NotifyEVChargingNeedsResponse(status="Rejected")
        energy: float | None = None
        low: float | None = None
        high: float | None = None
        if needs.ac_charging_parameters is not None:
            ac = needs.ac_charging_parameters
            energy, low, high = float(ac.energy_amount), ac.ev_min_current, ac.ev_max_current
        elif needs.dc_charging_parameters is not None:
            dc = needs.dc_charging_parameters
            energy = None if dc.energy_amount is None else float(dc.energy_amount)
        self.central.events.publish(
            events.ChargingNeeds(
                station_id=ctx.station_id,
                at=self.central.clock.now(),
                evse_id=req.evse_id,
                energy_wh=energy if energy is None or energy >= 0 else None,
                departure=utc(needs.departure_time) if needs.departure_time else None,
                min_current_a=float(low) if low is not None and low >= 0 else None,
                max_current_a=float(high) if high is not None and high > 0 else None,
            )
        )
        return m.NotifyEVChargingNeedsResponse(status="Accepted")

    async def notify_ev_charging_schedule(
        self, ctx: StationContext, req: m.NotifyEVChargingScheduleRequest
    ) -> m.NotifyEVChargingScheduleResponse:
        return m.NotifyEVChargingScheduleResponse(status="Accepted")


def _acknowledge(
    action: str, response: type[msgspec.Struct]
) -> Callable[[StationContext, Any], Awaitable[msgspec.Struct]]:
    async def handler(ctx: StationContext, req: Any) -> msgspec.Struct:
        log.info("notification acknowledged", station_id=ctx.station_id, action=action)
        return response()

    return handler


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _token_value(token: m.IdTokenType) -> str:
    """The value chargegrid keys the token by: a MacAddress token (Autocharge) in its canonical
    ``VID:`` form, any other as sent."""
    return autocharge.canonical(token.id_token, mac_address=token.type == "MacAddress")


def _hash_data(data: m.OCSPRequestDataType) -> HashData:
    return HashData(
        data.hash_algorithm,
        data.issuer_name_hash,
        data.issuer_key_hash,
        data.serial_number,
        data.responder_url,
    )
