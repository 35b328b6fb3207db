"""Moving a connected station up a security profile, in the order the specs give.

OCPP 1.6 security whitepaper section 2.4 (Security Profile migration): the Central System sets
the ``SecurityProfile`` configuration key with ChangeConfiguration; the Charge Point accepts,
disconnects and connects again at the new profile.

OCPP 2.0.1 Part 2 A05 (Upgrade Charging Station Security Profile): SetNetworkProfile stores the
new connection data (CSMS URL, profile) in a configuration slot; SetVariables makes that slot
first in ``OCPPCommCtrlr.NetworkConfigurationPriority``; Reset (OnIdle) makes the station
reconnect with it.

Before any message is sent, the prerequisites are checked: a profile only goes up (A05: no
downgrade); profiles 1 and 2 need the station's password to be set here; 2 and 3 need this node's
TLS port; 3 needs the CA that station certificates chain to. Once the station has accepted every
step, chargegrid holds it to the new profile: its next connection must meet it (a station that
falls back to its old profile is refused, as a station is never served below its profile).

Errors: :class:`ProfileChangeRefused` (the API's 409) for an unmet prerequisite or a step the
station declined; the errors of :meth:`Commands.send` (offline, invalid, timeout, CALLERROR).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chargegrid.domain.security import SecurityProfile
from chargegrid.service.commands import CommandResult, Commands
from chargegrid.service.ocpp.service import OcppService


class ProfileChangeRefused(Exception):
    """The change cannot be made, or the station declined a step; nothing was stored."""

    def __init__(self, reason: str, steps: list[CommandResult] | None = None) -> None:
        super().__init__(reason)
        self.steps = steps or []


@dataclass(frozen=True)
class ProfileChange:
    station_id: str
    profile: int
    csms_url: str | None = None  # 2.0.1: the URL the station connects to at the new profile
    configuration_slot: int = 1  # 2.0.1 SetNetworkProfile configurationSlot
    fallback_slots: tuple[int, ...] = ()  # 2.0.1: slots tried after the new one, in order
    message_timeout_s: int = 30  # 2.0.1 NetworkConnectionProfile messageTimeout
    interface: str = "Wired0"  # 2.0.1 ocppInterface


@dataclass
class ProfileChanged:
    profile: int
    steps: list[CommandResult] = field(default_factory=list)


class SecurityProfiles:
    def __init__(
        self, commands: Commands, ocpp: OcppService, *, tls: bool, client_ca: bool
    ) -> None:
        self.commands = commands
        self.ocpp = ocpp
        self.tls = tls
        self.client_ca = client_ca

    async def raise_profile(
        self, ocpp_version: str, change: ProfileChange, timeout: float | None = None
    ) -> ProfileChanged:
        self._check(ocpp_version, change)
        if ocpp_version == "1.6":
            steps = [
                await self._step(
                    change,
                    "ChangeConfiguration",
                    {"key": "SecurityProfile", "value": str(change.profile)},
                    timeout,
                    ok=("Accepted", "RebootRequired"),
                )
            ]
        else:
            steps = await self._steps_201(change, timeout)
        await self.ocpp.set_security_profile(change.station_id, change.profile)
        return ProfileChanged(change.profile, steps)

    def _check(self, ocpp_version: str, change: ProfileChange) -> None:
        now = self.ocpp.profile_of(change.station_id)
        wanted = SecurityProfile(change.profile)
        if wanted <= now:
            raise ProfileChangeRefused(
                f"the station is at security profile {int(now)}; a profile only goes up "
                "(OCPP 2.0.1 A05, 1.6 whitepaper 2.4)"
            )
        if wanted in (SecurityProfile.BASIC, SecurityProfile.TLS_BASIC) and not (
            self.ocpp.has_password(change.station_id)
        ):
            raise ProfileChangeRefused(
                f"security profile {int(wanted)} needs the station's password: set it first"
            )
        if wanted >= SecurityProfile.TLS_BASIC and not self.tls:
            raise ProfileChangeRefused(
                f"security profile {int(wanted)} needs TLS, and this node has no TLS port "
                "(set tls_cert and tls_key)"
            )
        if wanted is SecurityProfile.TLS_CLIENT_CERT and not self.client_ca:
            raise ProfileChangeRefused(
                "security profile 3 needs the CA of station certificates (set tls_client_ca)"
            )
        if ocpp_version != "1.6":
            url = change.csms_url or ""
            scheme = "wss://" if wanted >= SecurityProfile.TLS_BASIC else "ws://"
            if not url.startswith(scheme):
                raise ProfileChangeRefused(
                    f"OCPP 2.0.1 needs csms_url, a {scheme} URL at security profile {int(wanted)}"
                )

    async def _steps_201(self, change: ProfileChange, timeout: float | None) -> list[CommandResult]:
        steps = [
            await self._step(
                change,
                "SetNetworkProfile",
                {
                    "configurationSlot": change.configuration_slot,
                    "connectionData": {
                        "ocppVersion": "OCPP20",
                        "ocppTransport": "JSON",
                        "ocppCsmsUrl": change.csms_url,
                        "messageTimeout": change.message_timeout_s,
                        "securityProfile": change.profile,
                        "ocppInterface": change.interface,
                    },
                },
                timeout,
            )
        ]
        priority = ",".join(str(s) for s in (change.configuration_slot, *change.fallback_slots))
        result = await self.commands.send(
            change.station_id,
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "NetworkConfigurationPriority"},
                        "attributeValue": priority,
                    }
                ]
            },
            timeout,
        )
        steps.append(result)
        statuses = [r.get("attributeStatus") for r in result.response["setVariableResult"]]
        if statuses != ["Accepted"] and statuses != ["RebootRequired"]:
            raise ProfileChangeRefused(
                f"the station answered SetVariables NetworkConfigurationPriority with {statuses}",
                steps,
            )
        steps.append(
            await self._step(
                change, "Reset", {"type": "OnIdle"}, timeout, ("Accepted", "Scheduled"), steps
            )
        )
        return steps

    async def _step(
        self,
        change: ProfileChange,
        action: str,
        payload: dict[str, object],
        timeout: float | None,
        ok: tuple[str, ...] = ("Accepted",),
        done: list[CommandResult] | None = None,
    ) -> CommandResult:
        """Send one step; refused unless the station's status is in ``ok`` (``done``: the steps
        before it, returned with the refusal)."""
        result = await self.commands.send(change.station_id, action, payload, timeout)
        status = str(result.response.get("status", ""))
        if status not in ok:
            raise ProfileChangeRefused(
                f"the station answered {action} with {status}", [*(done or []), result]
            )
        return result
