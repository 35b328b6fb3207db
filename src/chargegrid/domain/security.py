"""Security profiles: who may connect as a station, and over what.

OCPP 1.6 Security Whitepaper (edition 3) section 2 and OCPP 2.0.1 Part 2 A00 define three profiles:

====  =====================================  ==================================================
 1    HTTP Basic authentication, no TLS      the station id as user, a password of 16-40 chars
 2    TLS with a server certificate + Basic  the station checks the CSMS certificate
 3    TLS with client certificates           no Basic authentication; the station's
                                             certificate chains to the CSMS's trusted CA and
                                             its subject commonName is the station id
====  =====================================  ==================================================

chargegrid adds profile 0 (no security) for sites that have not set one, as OCPP 1.6 without the
whitepaper allows. Each station has a profile; a station with a password is at least at profile 1,
and a node-wide minimum raises every station. The rules, in order:

1. A client certificate that names another station is refused whatever the profile: the CA
   vouches for someone else (2.0.1 A00.FR.412: the identity in the certificate is the station's).
2. A station is never served below its profile: profile 2 or 3 over a connection without TLS is
   refused, profile 3 without a (verified) client certificate is refused.
3. Profile 1 and 2 need the station's password: none set for the station, none sent or a wrong
   one is refused.
4. Profile 3 authenticates by the certificate alone; a Basic header, if sent, is not checked.

The certificate's chain and validity are checked by TLS before these rules see it; here a
certificate is its verified subject. Pure functions: no I/O, no protocol.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SecurityProfile(enum.IntEnum):
    NONE = 0
    BASIC = 1
    TLS_BASIC = 2
    TLS_CLIENT_CERT = 3


class PasswordCheck(enum.Enum):
    """What the handshake's Basic credentials came to, against the station's stored hash."""

    NONE_STORED = "none stored"
    NOT_SENT = "not sent"
    WRONG = "wrong"
    THROTTLED = "throttled"
    OK = "ok"


@dataclass(frozen=True)
class Channel:
    """What the connection proved before the WebSocket upgrade."""

    tls: bool = False
    #: The verified client certificate's subject commonName and organizationName, if one was sent.
    client_cn: str | None = None
    client_org: str | None = None
    cert_problem: str | None = None  # the certificate proves nothing (several names, say)

    @property
    def client_cert(self) -> bool:
        return self.client_cn is not None or self.client_org is not None


def effective_profile(stored: int, *, has_password: bool, minimum: int = 0) -> SecurityProfile:
    """The profile a station is held to: its own, at least 1 with a password, at least the
    node's minimum."""
    floor = SecurityProfile.BASIC if has_password else SecurityProfile.NONE
    return SecurityProfile(max(stored, floor, minimum))


@dataclass(frozen=True)
class Refusal:
    reason: str
    #: The password was missing or wrong (HTTP 401: try other credentials), rather than the
    #: connection being unfit for the station (HTTP 403).
    bad_credentials: bool = False


def refusal(
    station_id: str,
    profile: SecurityProfile,
    channel: Channel,
    password: PasswordCheck,
    organization: str | None = None,
) -> Refusal | None:
    """Why the station may not connect over ``channel``, or None when it may (the rules above).

    ``organization``, when set, is the organizationName every client certificate must carry
    (OCPP 2.0.1 A00 and the 1.6 whitepaper section 2.3: O is the CPO's name).
    """
    if channel.cert_problem is not None:
        return Refusal(channel.cert_problem)
    if channel.client_cert:
        if channel.client_cn != station_id:
            return Refusal(f"client certificate names {channel.client_cn!r}, not this station")
        if organization is not None and channel.client_org != organization:
            return Refusal(
                f"client certificate is of organization {channel.client_org!r}, "
                f"not {organization!r}"
            )
    if profile >= SecurityProfile.TLS_BASIC and not channel.tls:
        return Refusal(f"security profile {int(profile)} needs TLS; the connection has none")
    if profile is SecurityProfile.TLS_CLIENT_CERT:
        if not channel.client_cert:
            return Refusal("security profile 3 needs a client certificate; none was presented")
        return None
    if profile >= SecurityProfile.BASIC or password is not PasswordCheck.NONE_STORED:
        if password is PasswordCheck.NONE_STORED:
            reason = f"security profile {int(profile)} needs a password; none is set"
            return Refusal(reason, bad_credentials=True)
        if password is not PasswordCheck.OK:
            return Refusal(
                f"authentication failed: password {password.value}", bad_credentials=True
            )
    return None


#: The security events the specs mark critical (1.6 whitepaper appendix 1, 2.0.1 Part 2
#: "Security events"): a station sends them at once, with guaranteed delivery.
CRITICAL_SECURITY_EVENTS = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
    }
)
