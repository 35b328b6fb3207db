"""CSMS-initiated operations: send one to a connected station, record what became of it.

Every operation of the station's OCPP version can be sent (OCPP 1.6 section 5, OCPP 2.0.1 Part 2).
The payload is validated against that version's schema before anything is sent. Answers that
change what the CSMS knows are applied: accepted local lists and reservations are stored, and
configuration read with GetConfiguration / GetVariables or written with ChangeConfiguration /
SetVariables is kept.

Errors (each maps to an HTTP status in the REST API)::

    CommandError
      StationOfflineError      the station has no live connection           (409)
      CommandInvalidError      the payload fails the schema, or unknown op  (422)
      CommandTimeoutError      no answer within the timeout                 (504)
      CommandRejectedError     the station answered with a CALLERROR        (502)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from chargegrid.domain.redaction import redact
from chargegrid.protocols.ocpp16.dialect import DIALECT as OCPP16
from chargegrid.protocols.ocpp201.dialect import DIALECT as OCPP201
from chargegrid.protocols.ocppj.dialect import Dialect
from chargegrid.protocols.ocppj.errors import OcppError
from chargegrid.service.ocpp.context import (
    CallFailedError,
    StationLink,
    StationLinks,
    StationNotConnectedError,
)
from chargegrid.service.ocpp.effects import EFFECTS
from chargegrid.service.ports import Clock, CommandRecord, Store

log = structlog.get_logger(__name__)

DIALECTS: Mapping[str, Dialect] = {"1.6": OCPP16, "2.0.1": OCPP201}


class CommandError(Exception):
    """A CSMS-initiated operation that did not get a valid answer."""


class StationOfflineError(CommandError):
    """The station has no live connection; nothing was sent."""


class CommandInvalidError(CommandError):
    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [message]


class CommandTimeoutError(CommandError):
    """The station did not answer within the timeout; a late answer will be dropped."""


class CommandRejectedError(CommandError):
    def __init__(self, code: str, description: str, details: dict[str, Any]) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details


@dataclass(frozen=True, slots=True)
class CommandResult:
    action: str
    request: dict[str, Any]
    response: dict[str, Any]
    typed: msgspec.Struct


class Commands:
    """Sends operations through :class:`StationLinks` and records them in the store."""

    def __init__(self, links: StationLinks, store: Store, clock: Clock) -> None:
        self.links = links
        self.store = store
        self.clock = clock

    def operations(self, ocpp_version: str) -> list[str]:
        """The operations a CSMS may send to a station of ``ocpp_version``."""
        return sorted(DIALECTS[ocpp_version].csms_actions)

    def build(self, ocpp_version: str, action: str, payload: Mapping[str, Any]) -> msgspec.Struct:
        """Validate a JSON-shaped payload into the typed request of ``action``."""
        dialect = DIALECTS[ocpp_version]
        if action not in dialect.csms_actions:
            raise CommandInvalidError(
                f"{action} is not an operation a CSMS sends in OCPP {ocpp_version}"
            )
        request_type = dialect.actions[action][0]
        try:
            return msgspec.convert(dict(payload), request_type)
        except msgspec.ValidationError as exc:
            raise CommandInvalidError(f"invalid {action} payload: {exc}", [str(exc)]) from exc

    async def send(
        self,
        station_id: str,
        action: str,
        payload: Mapping[str, Any] | msgspec.Struct,
        timeout: float | None = None,
    ) -> CommandResult:
        sent_at = self.clock.now()
        request_json: dict[str, Any] = redact(  # what is kept and shown: no secrets
            action,
            msgspec.to_builtins(payload) if isinstance(payload, msgspec.Struct) else dict(payload),
        )
        try:
            link = self.links.get(station_id)
            if link is None:
                raise StationOfflineError(f"station {station_id} is not connected")
            request = (
                payload
                if isinstance(payload, msgspec.Struct)
                else self.build(link.ocpp_version, action, payload)
            )
            response = await self._call(link, request, timeout)
        except CommandError as exc:
            outcome, code, description = _describe(exc)
            record = CommandRecord(
                station_id,
                action,
                request_json,
                sent_at,
                outcome,
                error_code=code,
                error_description=description,
                answered_at=self.clock.now() if outcome in ("error", "timeout") else None,
            )
            await self.store.record_command(record)
            raise
        response_json = msgspec.to_builtins(response)
        await self.store.record_command(
            CommandRecord(
                station_id,
                action,
                request_json,
                sent_at,
                "answered",
                response=response_json,
                answered_at=self.clock.now(),
            )
        )
        effect = EFFECTS.get((link.ocpp_version, action))
        if effect is not None:
            await effect(self.store, station_id, request, response)
        return CommandResult(action, request_json, response_json, response)

    async def _call(
        self, link: StationLink, request: msgspec.Struct, timeout: float | None
    ) -> msgspec.Struct:
        try:
            return await link.call(request, timeout)
        except StationNotConnectedError as exc:
            raise StationOfflineError(f"station {link.station_id} is not connected") from exc
        except OcppError as exc:
            raise CommandInvalidError(str(exc)) from exc
        except CallFailedError as exc:
            if exc.timed_out:
                raise CommandTimeoutError(str(exc)) from exc
            if exc.error_code:
                raise CommandRejectedError(
                    exc.error_code, exc.error.description, exc.error.details
                ) from exc
            raise CommandRejectedError(
                "InvalidResponse" if exc.error.description else "ConnectionLost", str(exc), {}
            ) from exc


def _describe(exc: CommandError) -> tuple[str, str | None, str]:
    if isinstance(exc, CommandTimeoutError):
        return "timeout", None, str(exc)
    if isinstance(exc, CommandRejectedError):
        return "error", exc.code, exc.description
    if isinstance(exc, StationOfflineError):
        return "offline", None, str(exc)
    return "invalid", None, str(exc)
