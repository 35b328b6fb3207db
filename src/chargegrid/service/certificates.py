"""Station certificates: SignCertificate answered, CertificateSigned sent, renewal before expiry.

OCPP 2.0.1 A02/A03 and the OCPP 1.6 security whitepaper section 3:

1. A station sends SignCertificate with a CSR (2.0.1: ``certificateType`` ChargingStation or V2G;
   absent, its own certificate). The CSR is checked (:func:`~chargegrid.domain.certificates.
   check_csr`) and signed by the CA behind :class:`CertificateAuthority` *before* the answer:
   a CSR that breaks a rule, or a CA that fails, is answered Rejected and logged with why.
2. An accepted CSR's certificate goes out in CertificateSigned right after the answer (a task of
   its own, so the answer is sent first), with ``certificateType`` in 2.0.1. The station's
   answer decides the record's status: ``installed`` or ``rejected``; ``undelivered`` when it
   could not be sent.
3. Renewal: :meth:`Certificates.renew_due` (every hour when started) asks each connected station
   whose newest installed certificate of a kind ends within ``renew_before`` for a new CSR, with
   TriggerMessage SignChargingStationCertificate / SignV2GCertificate (2.0.1 A02, F06) or
   ExtendedTriggerMessage SignChargePointCertificate (1.6 whitepaper), or for a 1.6 station's V2G
   certificate the 2.0.1 TriggerMessage in a Plug & Charge DataTransfer, at most once a day per
   station and kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from chargegrid.domain.certificates import (
    PNC16_VENDOR_ID,
    CertificateUse,
    CheckedCsr,
    CsrRefused,
    IssuedCertificate,
    check_csr,
)
from chargegrid.service.commands import CommandError, Commands
from chargegrid.service.ports import Clock

log = structlog.get_logger(__name__)

_TRIGGER = {
    ("2.0.1", CertificateUse.CHARGING_STATION): (
        "TriggerMessage",
        {"requestedMessage": "SignChargingStationCertificate"},
    ),
    ("2.0.1", CertificateUse.V2G): ("TriggerMessage", {"requestedMessage": "SignV2GCertificate"}),
    ("1.6", CertificateUse.CHARGING_STATION): (
        "ExtendedTriggerMessage",
        {"requestedMessage": "SignChargePointCertificate"},
    ),
    # a 1.6 station's V2G certificate came through Plug & Charge DataTransfer: so does the ask
    ("1.6", CertificateUse.V2G): (
        "DataTransfer",
        {
            "vendorId": PNC16_VENDOR_ID,
            "messageId": "TriggerMessage",
            "data": '{"requestedMessage":"SignV2GCertificate"}',
        },
    ),
}


class CertificateAuthority(Protocol):
    """Signs a checked CSR (built in: :class:`chargegrid.adapters.pki.local_ca.LocalCa`; an
    external CA fits behind the same method)."""

    def issue(self, checked: CheckedCsr, station_id: str, now: datetime) -> IssuedCertificate:
        """Raises any exception to refuse; the CSR is then answered Rejected."""
        ...

    def root_pem(self) -> str:
        """The CA's certificate (PEM), for stations' trust stores."""
        ...


class CertificateStore(Protocol):
    async def add(self, cert: IssuedCertificate) -> IssuedCertificate: ...

    async def set_status(self, cert_id: int, status: str) -> None: ...

    async def of_station(self, station_id: str, limit: int = 100) -> list[IssuedCertificate]: ...

    async def expiring(self, before: datetime) -> list[IssuedCertificate]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class CertificateOptions:
    organization: str | None = None  # the O every CSR must carry, if set
    renew_before: timedelta = timedelta(days=30)
    renew_interval_s: float = 3600.0


class Certificates:
    def __init__(
        self,
        store: CertificateStore,
        clock: Clock,
        ca: CertificateAuthority | None,
        options: CertificateOptions | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ca = ca
        self.options = options or CertificateOptions()
        self._commands: Commands | None = None
        self._connected: Callable[[str], str | None] = lambda _station: None
        self._tasks: set[asyncio.Task[None]] = set()
        self._triggered: dict[tuple[str, CertificateUse], datetime] = {}
        self._renewer: asyncio.Task[None] | None = None

    def bind(self, commands: Commands, connected: Callable[[str], str | None]) -> None:
        """What sends to stations; built after the OCPP service, which this one serves."""
        self._commands = commands
        self._connected = connected

    async def sign_request(
        self,
        station_id: str,
        ocpp_version: str,
        csr: str,
        use: CertificateUse,
        *,
        data_transfer: str | None = None,
    ) -> bool:
        """Check and sign ``csr``; True (Accepted) when its certificate is on its way.
        ``data_transfer``: the vendor id under which a 1.6 station wants the 2.0.1
        CertificateSigned (Plug & Charge with OCPP 1.6)."""
        if self.ca is None or self._commands is None:
            log.warning("SignCertificate rejected: no CA", station_id=station_id)
            return False
        try:
            checked = check_csr(csr, station_id, use, self.options.organization)
            cert = self.ca.issue(checked, station_id, self.clock.now())
        except CsrRefused as exc:
            log.warning("SignCertificate rejected", station_id=station_id, reason=str(exc))
            return False
        except Exception as exc:  # the CA's fault, whatever it is: the station is answered
            log.error("the CA could not sign", station_id=station_id, exc_info=exc)
            return False
        cert = await self.store.add(cert)
        log.info(
            "certificate issued",
            station_id=station_id,
            use=use.value,
            serial=cert.serial,
            not_after=cert.not_after.isoformat(),
        )
        task = asyncio.get_running_loop().create_task(
            self._deliver(cert, ocpp_version, data_transfer)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _deliver(
        self, cert: IssuedCertificate, ocpp_version: str, data_transfer: str | None
    ) -> None:
        assert self._commands is not None and cert.id is not None
        payload: dict[str, object] = {"certificateChain": cert.chain_pem}
        if ocpp_version != "1.6" or data_transfer:
            payload["certificateType"] = cert.use.value
        action = "CertificateSigned"
        if data_transfer:  # the 2.0.1 message in a 1.6 DataTransfer
            action, payload = (
                "DataTransfer",
                {
                    "vendorId": data_transfer,
                    "messageId": "CertificateSigned",
                    "data": json.dumps(payload),
                },
            )
        try:
            result = await self._commands.send(cert.station_id, action, payload)
            answer = result.response
            if data_transfer:  # the 2.0.1 answer is the DataTransfer's data
                accepted_dt = answer.get("status") == "Accepted"
                answer = json.loads(answer.get("data") or "{}") if accepted_dt else {}
        except (CommandError, ValueError) as exc:
            log.warning("certificate not delivered", station_id=cert.station_id, reason=str(exc))
            await self.store.set_status(cert.id, "undelivered")
            return
        accepted = isinstance(answer, dict) and answer.get("status") == "Accepted"
        await self.store.set_status(cert.id, "installed" if accepted else "rejected")
        if not accepted:
            log.warning(
                "the station rejected its certificate",
                station_id=cert.station_id,
                serial=cert.serial,
            )

    async def renew_due(self) -> int:
        """Ask connected stations with certificates ending soon for new CSRs; how many asked."""
        if self._commands is None:
            return 0
        now = self.clock.now()
        asked = 0
        for cert in await self.store.expiring(now + self.options.renew_before):
            version = self._connected(cert.station_id)
            trigger = _TRIGGER.get((version or "", cert.use))
            key = (cert.station_id, cert.use)
            last = self._triggered.get(key)
            if trigger is None or (last is not None and now - last < timedelta(days=1)):
                continue
            self._triggered[key] = now
            action, payload = trigger
            try:
                await self._commands.send(cert.station_id, action, payload)
            except CommandError as exc:
                log.warning("renewal not asked", station_id=cert.station_id, reason=str(exc))
                continue
            log.info(
                "certificate renewal asked",
                station_id=cert.station_id,
                use=cert.use.value,
                not_after=cert.not_after.isoformat(),
            )
            asked += 1
        return asked

    async def start(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.renew_interval_s)
            try:
                await self.renew_due()
            except Exception as exc:  # the next round tries again
                log.error("certificate renewal round failed", exc_info=exc)

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._renewer] if self._renewer else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.close()
