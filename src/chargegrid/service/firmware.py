"""Firmware updates an operator starts, signed where the station's version allows.

* OCPP 2.0.1 L01: UpdateFirmware with ``requestId``, the firmware's location, when to retrieve
  and install it, and the signing certificate and signature (both optional there, and sent
  when given).
* OCPP 1.6 with the security whitepaper (section 5): SignedUpdateFirmware, the same fields, the
  certificate and signature required; a 1.6 update without them is the core profile's
  UpdateFirmware, which has no request id.

Before anything is sent the signing certificate must be one X.509 certificate in PEM and the
signature base64 (:class:`FirmwareRequestInvalid`, the API's 422). chargegrid picks the request
id. What became of the update is read from the command log (what was sent, the station's answer)
and the status reports the station sends with the request id (:mod:`chargegrid.domain.firmware`).
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from chargegrid.domain import firmware
from chargegrid.domain.model import StationReport
from chargegrid.protocols.ocppj.times import utc
from chargegrid.service.commands import CommandResult, Commands
from chargegrid.service.ports import CommandRecord, Store

ACTIONS = ("UpdateFirmware", "SignedUpdateFirmware")


class FirmwareRequestInvalid(ValueError):
    """The signing certificate or the signature cannot be what the station is to check."""


@dataclass(frozen=True)
class FirmwareRequest:
    station_id: str
    location: str
    retrieve_at: datetime
    install_at: datetime | None = None
    retries: int | None = None
    retry_interval_s: int | None = None
    signing_certificate: str | None = None  # PEM
    signature: str | None = None  # base64


@dataclass(frozen=True)
class FirmwareUpdate:
    """One update: what was sent, the station's answer, and its reports."""

    request_id: int | None
    sent: CommandRecord
    status: str  # the latest report's, or Requested
    ended: bool
    reports: list[StationReport]


class Firmware:
    def __init__(self, commands: Commands, store: Store) -> None:
        self.commands = commands
        self.store = store
        self._last_id = 0

    async def update(
        self, ocpp_version: str, request: FirmwareRequest, timeout: float | None = None
    ) -> tuple[int | None, CommandResult]:
        """Send the update; raises :class:`FirmwareRequestInvalid` or the errors of
        :meth:`Commands.send`. Returns the request id and the station's answer."""
        _check(request)
        signed = request.signing_certificate is not None
        if ocpp_version == "1.6" and not signed:
            payload: dict[str, object] = {
                "location": request.location,
                "retrieveDate": _stamp(request.retrieve_at),
            }
            _optional(payload, "retries", request.retries)
            _optional(payload, "retryInterval", request.retry_interval_s)
            return None, await self.commands.send(
                request.station_id, "UpdateFirmware", payload, timeout
            )
        request_id = self._next_id()
        image: dict[str, object] = {
            "location": request.location,
            "retrieveDateTime": _stamp(request.retrieve_at),
        }
        if request.install_at is not None:
            image["installDateTime"] = _stamp(request.install_at)
        _optional(image, "signingCertificate", request.signing_certificate)
        _optional(image, "signature", request.signature)
        payload = {"requestId": request_id, "firmware": image}
        _optional(payload, "retries", request.retries)
        _optional(payload, "retryInterval", request.retry_interval_s)
        action = "SignedUpdateFirmware" if ocpp_version == "1.6" else "UpdateFirmware"
        return request_id, await self.commands.send(request.station_id, action, payload, timeout)

    async def history(self, station_id: str, limit: int = 20) -> list[FirmwareUpdate]:
        """The station's updates, newest first, each with its reports."""
        sent = [c for c in await self.store.commands(station_id, 1000) if c.action in ACTIONS]
        reports = list(await self.store.reports(station_id, 1000))
        updates = []
        for command in sent[:limit]:
            request_id = command.request.get("requestId")
            mine = firmware.progress(reports, request_id if isinstance(request_id, int) else None)
            if request_id is None:  # 1.6 core: the reports after it was sent, before the next
                mine = [r for r in mine if r.timestamp is None or r.timestamp >= command.sent_at]
            status, ended = firmware.state(mine)
            updates.append(FirmwareUpdate(request_id, command, status, ended, mine))
        return updates

    def _next_id(self) -> int:
        """Seconds since 1970, and never the same twice in this process: unique per station
        across restarts without a counter to keep (31 bits last until 2038)."""
        self._last_id = max(self._last_id + 1, int(time.time()))
        return self._last_id


def _check(request: FirmwareRequest) -> None:
    if (request.signing_certificate is None) != (request.signature is None):
        raise FirmwareRequestInvalid("signing_certificate and signature go together")
    if request.signing_certificate is not None:
        try:
            x509.load_pem_x509_certificate(request.signing_certificate.encode())
        except ValueError as exc:
            raise FirmwareRequestInvalid(
                f"signing_certificate is not an X.509 certificate in PEM: {exc}"
            ) from exc
    if request.signature is not None:
        try:
            base64.b64decode(request.signature, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FirmwareRequestInvalid("signature is not base64") from exc


def _stamp(at: datetime) -> str:
    return utc(at).isoformat().replace("+00:00", "Z")


def _optional(payload: dict[str, object], name: str, value: object) -> None:
    if value is not None:
        payload[name] = value
