"""The OpenADR 2.0b VEN's link to its VTN, through ``openleadr``'s ``OpenADRClient`` (simple
HTTP, pull model; OpenADR 2.0b Profile Specification, 8 "Services" and 9 "Transport"):

* registration: oadrQueryRegistration, then oadrCreatePartyRegistration with the VEN's name
  (and venID if configured); openleadr tries once, so a VTN that is down or refuses is tried
  again, 2 s doubling up to 5 minutes; a VEN whose registration the VTN cancels registers anew;
* polling (oadrPoll) at the interval the VTN asks in oadrCreatedPartyRegistration;
* events: each new event or modification goes to :class:`~chargegrid.service.openadr2.Ven`,
  whose optIn / optOut openleadr sends back in oadrCreatedEvent; an event no longer in an
  oadrDistributeEvent is cancelled (implied cancellation); ended events are removed every
  ``tick_s``;
* reports: a TELEMETRY_USAGE report (powerReal in W, resource id the VEN's target) offered in
  oadrRegisterReport, sampled between ``report_interval_s`` and an hour as the VTN asks; each
  reading is what the target's cars draw now.

With a client certificate and key, openleadr uses them for TLS to the VTN (checked against the
CA file) and to sign each message; with the VTN's certificate fingerprint it checks the VTN's
signatures. The key is read by openleadr and never logged.

openleadr and APScheduler log through the standard library; both are raised to WARNING, as they
log every poll and every report sample at INFO.

Errors: :class:`VenError` from :meth:`OpenAdr2Link.start` for a client that cannot be built
(a certificate or key that cannot be read). Nothing the VTN sends raises: openleadr logs what it
cannot parse, and an event handler that fails opts out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from openleadr import OpenADRClient, enums, objects, utils

from chargegrid.protocols.openadr2 import event_id_of
from chargegrid.service.openadr2 import Opt, Ven

log = structlog.get_logger(__name__)

RETRY_S = 2.0
RETRY_MAX_S = 300.0
MAX_REPORT_INTERVAL = timedelta(hours=1)


class VenError(RuntimeError):
    """The OpenADR client cannot be built: the message says why."""


@dataclass(frozen=True)
class ClientOptions:
    vtn_url: str
    ven_name: str
    ven_id: str = ""
    cert: str = ""  # PEM paths; the key's content is openleadr's alone
    key: str = ""
    ca: str = ""
    vtn_fingerprint: str = ""
    report_interval_s: float = 10.0


class OpenAdr2Link:
    def __init__(
        self,
        ven: Ven,
        options: ClientOptions,
        *,
        tick_s: float = 5.0,
        retry_s: float = RETRY_S,
    ) -> None:
        self.ven = ven
        self.options = options
        self.tick_s = tick_s
        self.retry_s = retry_s
        self.client: Any = None  # the OpenADRClient of the current registration
        self._task: asyncio.Task[None] | None = None

    @property
    def registered(self) -> bool:
        return self.client is not None and bool(self.client.registration_id)

    async def start(self) -> None:
        logging.getLogger("openleadr").setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.client = self._client()  # a bad certificate path fails the start, not a retry
        if self.options.cert:  # what the VTN's operator needs to know us by: not a secret
            log.info("OpenADR VEN certificate", fingerprint=_fingerprint(self.options.cert))
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.client is not None:
            await _close(self.client)

    async def _run(self) -> None:
        delay = self.retry_s
        while True:
            try:
                await self.client.run()
            except Exception as exc:  # openleadr raises what it meets: TLS, files, parsing
                log.warning("OpenADR registration failed", vtn=self.ven.vtn, error=str(exc))
            if not self.registered:
                await _close(self.client)
                log.warning("OpenADR VTN did not register us", vtn=self.ven.vtn, retry_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                self.client = self._client()
                continue
            delay = self.retry_s
            log.info("OpenADR VEN registered", vtn=self.ven.vtn, ven_id=self.client.ven_id)
            while self.registered:
                await asyncio.sleep(self.tick_s)
                try:
                    self.ven.expire()
                except Exception:  # the balancer's trouble: keep polling the VTN regardless
                    log.exception("OpenADR expiry failed", vtn=self.ven.vtn)
            log.warning("OpenADR registration cancelled by the VTN", vtn=self.ven.vtn)
            await _close(self.client)
            self.client = self._client()

    def _client(self) -> Any:
        options = self.options
        try:
            client = OpenADRClient(
                ven_name=options.ven_name,
                vtn_url=options.vtn_url,
                ven_id=options.ven_id or None,
                cert=options.cert or None,
                key=options.key or None,
                ca_file=options.ca or None,
                vtn_fingerprint=options.vtn_fingerprint or None,
                show_fingerprint=False,  # it prints; start() logs it instead
            )
        except (OSError, ValueError) as exc:
            raise VenError(f"cannot build the OpenADR client: {exc}") from exc
        client.add_handler("on_event", self._on_event)
        client.add_handler("on_update_event", self._on_event)
        client.add_hook("after_parse_xml", self._parsed)
        interval = timedelta(seconds=options.report_interval_s)
        client.add_report(
            callback=self._reading,
            resource_id=self.ven.target,
            measurement=enums.MEASUREMENTS.REAL_POWER,
            report_name=enums.REPORT_NAME.TELEMETRY_USAGE,
            report_duration=interval,
            sampling_rate=objects.SamplingRate(
                min_period=interval, max_period=max(interval, MAX_REPORT_INTERVAL), on_change=False
            ),
        )
        return client

    async def _on_event(self, event: dict[str, Any]) -> str:
        try:
            return self.ven.on_event(event).value
        except Exception:  # never let one event stop the VEN: opt out of it
            log.exception("OpenADR event handling failed", vtn=self.ven.vtn)
            return Opt.OUT.value

    def _parsed(self, message_type: str, payload: dict[str, Any]) -> None:
        if message_type != "oadrDistributeEvent":
            return
        found = (event_id_of(e) for e in payload.get("events") or [])
        self.ven.listed({event_id for event_id in found if event_id is not None})

    def _reading(self) -> float:
        return self.ven.power_w()


def _fingerprint(cert: str) -> str:
    """Read once at start, like openleadr reads the certificate itself."""
    try:
        return str(utils.certificate_fingerprint(Path(cert).read_bytes()))
    except (OSError, ValueError) as exc:
        raise VenError(f"cannot read the OpenADR certificate {cert}: {exc}") from exc


async def _close(client: Any) -> None:
    """openleadr's stop(), which fails on a client that never sent anything."""
    if client.client_session is not None:
        await client.stop()
    elif client.scheduler.running:
        client.scheduler.shutdown(wait=False)
