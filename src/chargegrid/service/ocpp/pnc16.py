"""Plug & Charge for OCPP 1.6 stations, as the OCA application note "Using ISO 15118 Plug & Charge
with OCPP 1.6" (v1.0, 2020-09-16) gives it: the OCPP 2.0.1 messages travel in DataTransfer, with
``vendorId`` ``org.openchargealliance.iso15118pnc``, ``messageId`` the 2.0.1 action, and ``data``
the 2.0.1 payload as a JSON string; the answer's ``data`` is the 2.0.1 response, likewise.

From the station: Authorize, GetCertificateStatus and Get15118EVCertificate are handled by the
2.0.1 handlers (:mod:`.v201`); SignCertificate by :mod:`chargegrid.service.certificates`, whose
CertificateSigned then goes back in a DataTransfer too. A ``data`` that is not the 2.0.1 payload
is answered ``Rejected`` (and logged); another ``messageId``, ``UnknownMessageId``.
"""

from __future__ import annotations

import msgspec
import structlog

from chargegrid.domain.certificates import PNC16_VENDOR_ID, CertificateUse
from chargegrid.protocols.ocpp16 import messages as m16
from chargegrid.protocols.ocpp201 import messages as m201
from chargegrid.protocols.ocpp201.dialect import DIALECT as OCPP201
from chargegrid.service.certificates import Certificates
from chargegrid.service.ocpp.context import StationContext
from chargegrid.service.ocpp.v201 import Ocpp201Handlers

log = structlog.get_logger(__name__)

VENDOR_ID = PNC16_VENDOR_ID
_DELEGATED = ("Authorize", "GetCertificateStatus", "Get15118EVCertificate")


class Pnc16:
    def __init__(self, ocpp201: Ocpp201Handlers, certificates: Certificates | None) -> None:
        self.routes = ocpp201.router()
        self.certificates = certificates

    async def handle(
        self, ctx: StationContext, message_id: str | None, data: str | None
    ) -> m16.DataTransferResponse:
        if message_id not in (*_DELEGATED, "SignCertificate"):
            return m16.DataTransferResponse(status="UnknownMessageId")
        request_type = OCPP201.actions[message_id][0]
        try:
            request = msgspec.json.decode(data or "", type=request_type)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning(
                "Plug & Charge DataTransfer refused",
                station_id=ctx.station_id,
                message_id=message_id,
                reason=str(exc),
            )
            return m16.DataTransferResponse(status="Rejected")
        if message_id == "SignCertificate":
            assert isinstance(request, m201.SignCertificateRequest)
            response: msgspec.Struct = await self._sign(ctx, request)
        else:
            response = await self.routes[message_id](ctx, request)
        return m16.DataTransferResponse(
            status="Accepted", data=msgspec.json.encode(response).decode()
        )

    async def _sign(
        self, ctx: StationContext, req: m201.SignCertificateRequest
    ) -> m201.SignCertificateResponse:
        use = CertificateUse(req.certificate_type or "V2GCertificate")  # PnC: the SECC's
        accepted = self.certificates is not None and await self.certificates.sign_request(
            ctx.station_id, "1.6", req.csr, use, data_transfer=VENDOR_ID
        )
        return m201.SignCertificateResponse(status="Accepted" if accepted else "Rejected")
