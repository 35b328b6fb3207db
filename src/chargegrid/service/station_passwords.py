"""Giving a station a new Basic-auth password that chargegrid generates.

OCPP 2.0.1 Part 2 A01 (Update Charging Station Password for HTTP Basic Authentication): the CSMS
sends the new password with SetVariables of ``SecurityCtrlr.BasicAuthPassword``; a station that
accepts it uses it from its next connection on. OCPP 1.6 security whitepaper section 2.1: the
same with ChangeConfiguration of the ``AuthorizationKey`` key.

Rules:

* The password is generated here (32 characters, 192 random bits), so its hash needs no key
  stretching (:mod:`chargegrid.domain.passwords`): the station's next connection is checked in
  microseconds, not 55 ms, which a network of thousands of stations feels after each restart.
* A connected station is sent the password first, and it is stored only once the station
  accepted it (``Accepted``, or ``RebootRequired``: from its next start): a station that declines
  keeps its old password, and so does chargegrid (:class:`PasswordRefused`).
* A station that is not connected has it stored at once: it is for the operator to configure at
  the station (its first connection, say). The answer says which of the two happened.
* The password is returned once, to the caller, and never logged: the command log keeps the
  request with the secret blanked (:mod:`chargegrid.domain.redaction`).

Known gap: a station that accepted but whose answer was lost (a timeout, 504) has the new
password while chargegrid keeps the old, and is refused at its next connection until an operator
sets a password at both ends. Keeping the new one as pending, and accepting either until the
station connects with the new one, would close it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chargegrid.domain.passwords import generate_password
from chargegrid.service.commands import CommandResult, Commands
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


# the station uses it from its next connection (after its reboot, for RebootRequired)
_ACCEPTED = {"Accepted", "RebootRequired"}


class StationPasswords:
    def __init__(self, ocpp: OcppService, commands: Commands) -> None:
        self.ocpp = ocpp
        self.commands = commands

    async def renew(self, station_id: str) -> NewPassword:
        """Generate a password for the station, send it if the station is connected, store it.

        Raises :class:`PasswordRefused`, or the errors of :meth:`Commands.send` (timeout,
        CALLERROR): in every case nothing is stored and the old password stands.
        """
        password = generate_password()
        link = self.commands.links.get(station_id)
        step = None
        if link is not None:
            action, payload = _request(link.ocpp_version, password)
            step = await self.commands.send(station_id, action, payload)
            status = _status(link.ocpp_version, step.response)
            if status not in _ACCEPTED:
                raise PasswordRefused(
                    f"station {station_id} answered {action} with {status}: it keeps its password",
                    step,
                )
        await self.ocpp.store_generated_password(station_id, password)
        return NewPassword(password, sent=step is not None, step=step)


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


def _status(ocpp_version: str, response: dict[str, Any]) -> str:
    if ocpp_version == "1.6":
        return str(response.get("status"))
    results = response.get("setVariableResult") or [{}]
    return str(results[0].get("attributeStatus"))
