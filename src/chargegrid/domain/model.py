"""The domain of a charging network, shared by every OCPP version.

Nothing here knows OCPP: a 1.6 StartTransaction and a 2.0.1 TransactionEvent(Started) both reach the
domain as :class:`TransactionStarted` facts about a :class:`Transaction`. Energy is in Wh and times
are aware UTC datetimes. The enumerations are the union of what both versions can express, so no
information a station sent is lost in the mapping.

The records are ``msgspec.Struct`` classes rather than dataclasses: plain records all the same
(fields, equality, ``msgspec.structs.replace`` for a changed copy), but a frozen dataclass costs
about 1.7 us to build against 0.07 us for a Struct, and a MeterValues message builds one
SampledValue per reading it carries. Those that can hold no reference cycle are not tracked by
the garbage collector (``gc=False``).
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import msgspec


class Registration(enum.Enum):
    """Whether the CSMS serves a station (OCPP 1.6 4.2 / 2.0.1 B01-B03 RegistrationStatus)."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class UnknownStationPolicy(enum.Enum):
    """What a BootNotification from a station the database does not know gets."""

    ACCEPT = "accept"
    PENDING = "pending"
    REJECT = "reject"


class TokenKind(enum.Enum):
    """How a driver identifies (the union of 1.6 idTag and 2.0.1 IdTokenEnumType)."""

    RFID = "ISO14443"
    RFID_15693 = "ISO15693"
    KEY_CODE = "KeyCode"
    CENTRAL = "Central"
    EMAID = "eMAID"
    MAC_ADDRESS = "MacAddress"
    LOCAL = "Local"
    NO_AUTHORIZATION = "NoAuthorization"
    ID_TAG = "IdTag"  # an OCPP 1.6 idTag, whose kind the station does not say


class AuthorizationStatus(enum.Enum):
    """The answer to "may this token charge?" (1.6 AuthorizationStatus, 2.0.1 ...EnumType)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"
    UNKNOWN = "Unknown"


class IdToken(msgspec.Struct, frozen=True):
    """A driver's identifier with its standing (OCPP 2.0.1 C01; 1.6 Authorize)."""

    value: str
    kind: TokenKind = TokenKind.RFID
    group: str | None = None
    expires_at: datetime | None = None
    blocked: bool = False
    allow_concurrent: bool = False
    owner: str | None = None


class TokenGroup(msgspec.Struct, frozen=True):
    """The tokens that share a group id (1.6 parentIdTag / 2.0.1 groupIdToken)."""

    name: str
    tokens: int
    blocked: int


class Authorization(msgspec.Struct, frozen=True, gc=False):
    """The outcome of authorizing a token, as told to the station."""

    status: AuthorizationStatus
    group: str | None = None
    expires_at: datetime | None = None


class Station(msgspec.Struct):
    """A charging station and what it told us about itself (BootNotification)."""

    id: str
    registration: Registration = Registration.PENDING
    ocpp_version: str | None = None
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    boot_reason: str | None = None
    online: bool = False
    last_seen: datetime | None = None
    password_hash: str | None = None
    # a generated password sent to the station whose acceptance is not known yet (a lost
    # answer) or that it uses from its next start: accepted beside the other until it is used
    pending_password_hash: str | None = None
    lenient: frozenset[str] = frozenset()
    latitude: float | None = None  # WGS 84 degrees, for the map
    longitude: float | None = None
    location: str | None = None  # an address or site name, free text
    security_profile: int = 0  # 0-3, see chargegrid.domain.security


class StatusChange(msgspec.Struct, frozen=True, gc=False):
    """A connector (or EVSE, or whole station when both are 0/None) changed status."""

    station_id: str
    evse_id: int
    connector_id: int
    status: str
    timestamp: datetime
    error_code: str | None = None
    info: str | None = None
    vendor_error_code: str | None = None


class SampledValue(msgspec.Struct, frozen=True, gc=False):
    """One reading (1.6 SampledValue / 2.0.1 SampledValueType), with nothing dropped."""

    value: Decimal
    measurand: str = "Energy.Active.Import.Register"
    context: str | None = None
    phase: str | None = None
    location: str | None = None
    unit: str | None = None
    multiplier: int = 0  # 2.0.1 unitOfMeasure.multiplier (power of ten)
    signed_data: str | None = None


class MeterReading(msgspec.Struct, frozen=True, gc=False):
    """Readings taken at one moment."""

    timestamp: datetime
    values: tuple[SampledValue, ...]


class TransactionState(enum.Enum):
    ACTIVE = "Active"
    ENDED = "Ended"


class Transaction(msgspec.Struct):
    """A charging session as the CSMS keeps it, whatever the OCPP version that ran it.

    ``id`` is ours (and the 1.6 transactionId); ``station_tx_id`` is the id the station gave
    (2.0.1 transactionId; for 1.6 the decimal text of ``id``).
    """

    id: int
    station_id: str
    station_tx_id: str
    evse_id: int
    connector_id: int
    id_token: str | None
    started_at: datetime
    meter_start_wh: Decimal | None = None
    state: TransactionState = TransactionState.ACTIVE
    stopped_at: datetime | None = None
    meter_stop_wh: Decimal | None = None
    stop_reason: str | None = None
    reservation_id: int | None = None
    charging_state: str | None = None
    last_meter_wh: Decimal | None = None

    @property
    def energy_wh(self) -> Decimal | None:
        """Energy delivered so far (ended: in total), from the register readings."""
        end = self.meter_stop_wh if self.meter_stop_wh is not None else self.last_meter_wh
        if end is None or self.meter_start_wh is None:
            return None
        return end - self.meter_start_wh


class Reservation(msgspec.Struct, frozen=True):
    """A connector or EVSE held for a token until ``expires_at`` (1.6 ReserveNow / 2.0.1 H01)."""

    id: int
    station_id: str
    evse_id: int | None
    id_token: str
    expires_at: datetime
    connector_type: str | None = None
    status: str = "Requested"


class SecurityEvent(msgspec.Struct, frozen=True):
    """A station's security event notification (1.6 whitepaper / 2.0.1 A04)."""

    station_id: str
    kind: str
    timestamp: datetime
    tech_info: str | None = None


class StationReport(msgspec.Struct, frozen=True):
    """A status report a station sent about an operation: firmware, log upload, diagnostics."""

    station_id: str
    topic: str  # "firmware", "log", "diagnostics", "publish-firmware"
    status: str
    request_id: int | None = None
    timestamp: datetime | None = None


class ConfigValue(msgspec.Struct, frozen=True):
    """A configuration setting: a 1.6 key or a 2.0.1 component/variable/attribute."""

    station_id: str
    component: str  # "" for 1.6 keys
    variable: str
    value: str | None
    attribute: str = "Actual"
    instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    readonly: bool = False
    extra: dict[str, object] = msgspec.field(default_factory=dict)


class LocalListEntry(msgspec.Struct, frozen=True):
    id_token: str
    status: AuthorizationStatus | None  # None removes the entry (differential update)
    expires_at: datetime | None = None
    group: str | None = None
