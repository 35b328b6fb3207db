"""What the API sends and accepts: its own records, so the domain can change without breaking
clients. Energy is a decimal string in Wh (exact), times are RFC 3339 UTC.

What it accepts says in its schema all that it refuses with 400, so the OpenAPI document tells a
client what is valid: text has no NUL character (PostgreSQL cannot store one), times have an
offset, ids fit the databases' 32-bit integers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar.params import PathParameter

from chargegrid.domain.access import ApiToken, Role
from chargegrid.domain.autocharge import vehicle_token
from chargegrid.domain.model import (
    IdToken,
    MeterReading,
    Station,
    StatusChange,
    TokenKind,
    Transaction,
)

NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, msgspec.Meta(pattern=NO_NUL)]
# Whitespace spelled out: "\s" is not the same set in Python's re (msgspec's) as in the ECMA-262
# regexes of JSON Schema (U+0085 is whitespace only in the former, U+FEFF only in the latter).
SPACE = r"\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
StationId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=48, pattern=rf"^[^/\x00{SPACE}]+$")
]
# The path /tokens/{value} addresses a token: a "/" in its value would make it unreachable.
TokenValue = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^/\x00]+$")]
# Without the offset msgspec would read a time as naive, which the store refuses.
Time = Annotated[datetime, msgspec.Meta(tz=True)]
# The id of a record in a path: what the store assigns (SQL INTEGER, 32 bits on PostgreSQL).
RecordId = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
RegistrationName = Literal["Accepted", "Pending", "Rejected"]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90, description="WGS 84 degrees")]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180, description="WGS 84 degrees")]
Location = Annotated[str, msgspec.Meta(max_length=200, description="address or site name")]
# A Literal, not ge=0 / le=3: Litestar drops a ``minimum`` of 0 from a union's schema.
ProfileNumber = Annotated[
    Literal[0, 1, 2, 3],
    msgspec.Meta(
        description="OCPP security profile: 0 none, 1 Basic auth, 2 TLS + Basic auth, "
        "3 TLS with a client certificate",
    ),
]
DeviationName = Literal["extra-fields", "enum-case", "numbers-as-strings", "strings-as-numbers"]


class StationOut(msgspec.Struct):
    id: str
    registration: str
    connected: bool
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    boot_reason: str | None
    last_seen: datetime | None
    password_set: bool
    password_pending: bool  # a generated password sent whose use is not seen yet
    security_profile: int
    lenient: list[str]
    latitude: float | None
    longitude: float | None
    location: str | None

    @classmethod
    def of(cls, station: Station, connected: bool) -> StationOut:
        return cls(
            id=station.id,
            registration=station.registration.value,
            connected=connected,
            ocpp_version=station.ocpp_version,
            vendor=station.vendor,
            model=station.model,
            serial_number=station.serial_number,
            firmware_version=station.firmware_version,
            boot_reason=station.boot_reason,
            last_seen=station.last_seen,
            password_set=station.password_hash is not None,
            password_pending=station.pending_password_hash is not None,
            security_profile=station.security_profile,
            lenient=sorted(station.lenient),
            latitude=station.latitude,
            longitude=station.longitude,
            location=station.location,
        )


class ConnectorOut(msgspec.Struct):
    evse_id: int
    connector_id: int
    status: str
    timestamp: datetime
    error_code: str | None
    info: str | None

    @classmethod
    def of(cls, change: StatusChange) -> ConnectorOut:
        return cls(
            change.evse_id,
            change.connector_id,
            change.status,
            change.timestamp,
            change.error_code,
            change.info,
        )


class StationDetail(msgspec.Struct):
    station: StationOut
    connectors: list[ConnectorOut]
    active_transactions: list[int]


class StationIn(msgspec.Struct, forbid_unknown_fields=True):
    """Register a station (accepted unless said otherwise)."""

    id: StationId
    registration: RegistrationName = "Accepted"
    password: Annotated[str, msgspec.Meta(min_length=16, max_length=40)] | None = None
    security_profile: ProfileNumber = 0
    lenient: list[DeviationName] = []
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    location: Location | None = None


class StationPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Change what is given; ``password: null`` removes the password. ``security_profile`` sets
    what chargegrid holds the station to, from its next connection; to move a connected station
    up, use ``POST /stations/{id}/security-profile``, which reconfigures the station first."""

    registration: RegistrationName | msgspec.UnsetType = msgspec.UNSET
    password: (
        Annotated[str, msgspec.Meta(min_length=16, max_length=40)] | msgspec.UnsetType | None
    ) = msgspec.UNSET
    security_profile: ProfileNumber | msgspec.UnsetType = msgspec.UNSET
    lenient: list[DeviationName] | msgspec.UnsetType = msgspec.UNSET
    latitude: Latitude | msgspec.UnsetType | None = msgspec.UNSET
    longitude: Longitude | msgspec.UnsetType | None = msgspec.UNSET
    location: Location | msgspec.UnsetType | None = msgspec.UNSET


class TokenOut(msgspec.Struct):
    value: str
    kind: str
    group: str | None
    expires_at: datetime | None
    blocked: bool
    allow_concurrent: bool
    owner: str | None

    @classmethod
    def of(cls, token: IdToken) -> TokenOut:
        return cls(
            token.value,
            token.kind.value,
            token.group,
            token.expires_at,
            token.blocked,
            token.allow_concurrent,
            token.owner,
        )


TokenKindName = Literal[
    "ISO14443",
    "ISO15693",
    "KeyCode",
    "Central",
    "eMAID",
    "MacAddress",
    "Local",
    "NoAuthorization",
    "IdTag",
]


def storable(value: datetime) -> datetime:
    """``value``, or when it has no UTC equivalent the nearest time that has one: the store
    keeps times in UTC, and the year 1 at +01:00 is in the year 0 there, before any time it can
    hold (so is 9999-12-31 at -01:00 after any). The document allows them (RFC 3339)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        return (
            datetime.min.replace(tzinfo=UTC)
            if value.year == 1
            else datetime.max.replace(tzinfo=UTC)
        )
    return value


class TokenIn(msgspec.Struct, forbid_unknown_fields=True):
    value: TokenValue
    kind: TokenKindName = "ISO14443"
    group: Text | None = None
    expires_at: Time | None = None
    blocked: bool = False
    allow_concurrent: bool = False
    owner: Text | None = None

    def __post_init__(self) -> None:
        if self.expires_at is not None:
            self.expires_at = storable(self.expires_at)

    def to_domain(self) -> IdToken:
        """Raises :class:`~chargegrid.domain.autocharge.MacAddressError` for a MacAddress token
        whose value is no MAC address; a vehicle's MAC is kept in its ``VID:`` form."""
        kind = TokenKind(self.kind)
        return IdToken(
            value=vehicle_token(self.value) if kind is TokenKind.MAC_ADDRESS else self.value,
            kind=kind,
            group=self.group,
            expires_at=self.expires_at,
            blocked=self.blocked,
            allow_concurrent=self.allow_concurrent,
            owner=self.owner,
        )


class TokenPatch(msgspec.Struct, forbid_unknown_fields=True):
    kind: TokenKindName | msgspec.UnsetType = msgspec.UNSET
    group: Text | msgspec.UnsetType | None = msgspec.UNSET
    expires_at: Time | msgspec.UnsetType | None = msgspec.UNSET
    blocked: bool | msgspec.UnsetType = msgspec.UNSET
    allow_concurrent: bool | msgspec.UnsetType = msgspec.UNSET
    owner: Text | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.expires_at, datetime):
            self.expires_at = storable(self.expires_at)


class ImportResult(msgspec.Struct):
    created: int
    updated: int


class TransactionOut(msgspec.Struct):
    id: int
    station_id: str
    station_tx_id: str
    evse_id: int
    connector_id: int
    id_token: str | None
    state: str
    started_at: datetime
    stopped_at: datetime | None
    meter_start_wh: str | None
    meter_stop_wh: str | None
    energy_wh: str | None
    stop_reason: str | None
    reservation_id: int | None

    @classmethod
    def of(cls, tx: Transaction) -> TransactionOut:
        def text(value: Any) -> str | None:
            return None if value is None else str(value)

        return cls(
            id=tx.id,
            station_id=tx.station_id,
            station_tx_id=tx.station_tx_id,
            evse_id=tx.evse_id,
            connector_id=tx.connector_id,
            id_token=tx.id_token,
            state=tx.state.value,
            started_at=tx.started_at,
            stopped_at=tx.stopped_at,
            meter_start_wh=text(tx.meter_start_wh),
            meter_stop_wh=text(tx.meter_stop_wh),
            energy_wh=text(tx.energy_wh),
            stop_reason=tx.stop_reason,
            reservation_id=tx.reservation_id,
        )


class SampledValueOut(msgspec.Struct):
    value: str
    measurand: str
    unit: str | None
    phase: str | None
    context: str | None
    location: str | None
    multiplier: int


class MeterReadingOut(msgspec.Struct):
    timestamp: datetime
    values: list[SampledValueOut]

    @classmethod
    def of(cls, reading: MeterReading) -> MeterReadingOut:
        return cls(
            reading.timestamp,
            [
                SampledValueOut(
                    str(v.value), v.measurand, v.unit, v.phase, v.context, v.location, v.multiplier
                )
                for v in reading.values
            ],
        )


class TransactionDetail(msgspec.Struct):
    transaction: TransactionOut
    meter_values: list[MeterReadingOut]


class CommandOut(msgspec.Struct):
    """A station's answer to an operation."""

    operation: str
    request: dict[str, Any]
    response: dict[str, Any]


class ApiTokenOut(msgspec.Struct):
    id: int
    name: str
    role: str
    created_at: datetime
    revoked: bool

    @classmethod
    def of(cls, token: ApiToken) -> ApiTokenOut:
        return cls(token.id or 0, token.name, token.role.value, token.created_at, token.revoked)


class ApiTokenIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
    role: Literal["viewer", "operator", "admin"]

    @property
    def role_value(self) -> Role:
        return Role(self.role)


class ApiTokenCreated(msgspec.Struct):
    """The secret is shown here once and never again."""

    token: str
    api_token: ApiTokenOut


class ApiError(msgspec.Struct, omit_defaults=True):
    """What every error response carries: its HTTP status, what went wrong, and for some errors
    the particulars (``extra``: e.g. the list of validation errors)."""

    status_code: int
    detail: str
    extra: dict[str, Any] | list[Any] | None = None
