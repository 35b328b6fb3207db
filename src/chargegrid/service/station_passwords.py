"""Giving a station a new Basic-auth password that chargegrid generates.

OCPP 2.0.1 Part 2 A01 (Update Charging Station Password for HTTP Basic Authentication): the CSMS
sends the new password with SetVariables of ``SecurityCtrlr.BasicAuthPassword``; a station that
accepts it uses it from its next connection on. OCPP 1.6 security whitepaper section 2.1: the
same with ChangeConfiguration of the ``AuthorizationKey`` key.

Rules:

* The password is generated here (32 characters, 192 random bits), so its hash needs no key
  stretching (:mod:`chargegrid.domain.passwords`): the station's next connection is checked in
  microseconds, not 55 ms, which a network of thousands of stations feels after each restart.
* A connected station is sent the password, which is first stored as *pending*: accepted beside
  the station's password, and made its password when the station connects with it
  (:meth:`OcppService.store_pending_password`). So whatever becomes of the answer, the station
  can connect with the password it holds:

  - ``Accepted``: the station uses the new password from its next connection; it is the
    station's password at once, and the old one is refused from now on;
  - ``RebootRequired``: the station uses it once it has restarted; until then it may connect
    again with the old one, so both stay accepted until it connects with the new one;
  - an answer that declines it (another status, or a CALLERROR), or nothing sent at all: the
    pending password is dropped and the old one stands (:class:`PasswordRefused`, or the
    error of :meth:`Commands.send`);
  - no answer that can be read (a timeout, the connection lost on the way, an invalid
    answer): the station may have taken the password, so it stays pending; the error is
    raised (504, 502).
* A station that is not connected has it stored at once: it is for the operator to configure at
  the station (its first connection, say). The answer says which of the two happened.
* The password is returned once, to the caller, and never logged: the command log keeps the
  request with the secret blanked (:mod:`chargegrid.domain.redaction`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chargegrid.domain.passwords import generate_password
from chargegrid.service.commands import (
    CommandError,
    CommandInvalidError,
    CommandRejectedError,
    CommandResult,
    Commands,
    StationOfflineError,
)
from chargegrid.service.ocpp.service import OcppService


class PasswordRefused(Exception):
    """The connected station declined the new password; nothing was stored."""

    def __init__(self, reason: str, step: CommandResult) -> None:
        super().__init__(reason)
        self.step = step


@dataclass(frozen=True)
class NewPassword:
    password: str
    sent: bool  # the station was connected and accepted it; else it was only stored
    step: CommandResult | None = None
    pending: bool = False  # RebootRequired: the old password is accepted until the new is used


class StationPasswords:
    def __init__(self, ocpp: OcppService, commands: Commands) -> None:
        self.ocpp = ocpp
        self.commands = commands

    async def renew(self, station_id: str) -> NewPassword:
        """Generate a password for the station, send it if the station is connected, store it.

        Raises :class:`PasswordRefused`, or the errors of :meth:`Commands.send`: the old
        password stands, and the new one stays pending only when the answer is unknown.
        """
        password = generate_password()
        link = self.commands.links.get(station_id)
        if link is None:
            await self.ocpp.store_generated_password(station_id, password)
            return NewPassword(password, sent=False)
        action, payload = _request(link.ocpp_version, password)
        await self.ocpp.store_pending_password(station_id, password)
        try:
            step = await self.commands.send(station_id, action, payload)
        except (CommandRejectedError, StationOfflineError, CommandInvalidError) as exc:
            if not _unanswered(exc):  # declined, or not sent: the station has not got it
                await self.ocpp.store_pending_password(station_id, None)
            raise
        status = _status(link.ocpp_version, step.response)
        if status == "Accepted":
            await self.ocpp.store_generated_password(station_id, password)
        elif status != "RebootRequired":
            await self.ocpp.store_pending_password(station_id, None)
            raise PasswordRefused(
                f"station {station_id} answered {action} with {status}: it keeps its password",
                step,
            )
        return NewPassword(password, sent=True, step=step, pending=status == "RebootRequired")


def _request(ocpp_version: str, password: str) -> tuple[str, dict[str, Any]]:
    if ocpp_version == "1.6":
        return "ChangeConfiguration", {"key": "AuthorizationKey", "value": password}
    return "SetVariables", {
        "setVariableData": [
            {
                "attributeValue": password,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }


def _unanswered(exc: CommandError) -> bool:
    """The call went and no readable answer came (a timeout, a CommandTimeoutError, is not
    caught at all): the station may have taken the password. A CALLERROR is an answer."""
    return isinstance(exc, CommandRejectedError) and exc.code in (
        "ConnectionLost",
        "InvalidResponse",
    )


def _status(ocpp_version: str, response: dict[str, Any]) -> str:
    if ocpp_version == "1.6":
        return str(response.get("status"))
    results = response.get("setVariableResult") or [{}]
    return str(results[0].get("attributeStatus"))
