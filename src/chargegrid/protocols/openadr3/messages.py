"""The OpenADR 3 objects a VEN reads and writes (openadr3.yaml 3.0.1, components/schemas), as
frozen msgspec structs whose attributes are the wire's names in snake_case.

Decoding enforces what the schemas state: required properties, ``minLength`` / ``maxLength``,
the ``objectID`` pattern, ``minimum`` / ``maximum``, enumerations, ``dateTime`` with an offset and
``duration``. A property the schema makes ``nullable`` defaults to None; one it does not is
:data:`msgspec.UNSET` when absent, so encoding leaves it out rather than send ``null``. Unknown
properties are ignored (no schema sets ``additionalProperties: false``).

Kept compatible with OpenADR 3.1 where that costs nothing: ``targets`` are ``valuesMap`` objects
(3.0) or plain strings (3.1); ``intervalPeriod.start`` and an event's ``intervals`` may be
absent; an event may carry a ``duration`` and a program ``attributes`` (both read, not used).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from chargegrid.protocols.openadr3.datatypes import (
    AwareDatetime,
    Duration,
    Int32,
    Name,
    Number,
    ObjectId,
    Secret,
)

__all__ = [
    "AuthError",
    "ClientCredentialResponse",
    "Event",
    "EventPayloadDescriptor",
    "Interval",
    "IntervalPeriod",
    "PayloadDescriptor",
    "Point",
    "Problem",
    "Program",
    "ProgramDescription",
    "Report",
    "ReportDescriptor",
    "ReportPayloadDescriptor",
    "ReportResource",
    "Target",
    "Value",
    "ValuesMap",
]


class Oadr3Struct(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename="camel"):
    """Unknown properties are ignored; camelCase on the wire."""


class Point(Oadr3Struct, frozen=True, kw_only=True):
    """``point``: a pair of floats."""

    x: Number
    y: Number


Value = bool | int | Number | str | Point
"""An item of ``valuesMap.values``: number, integer, string, boolean or point."""


class ValuesMap(Oadr3Struct, frozen=True, kw_only=True):
    """``valuesMap``: a type (``PRICE``, ``SIMPLE``, ``IMPORT_CAPACITY_LIMIT``, a private
    string...) and its values, most often one."""

    type: Name
    values: tuple[Value, ...]


Target = ValuesMap | Name
"""A target: a ``valuesMap`` (3.0: ``{"type": "VEN_NAME", "values": [...]}``) or a string (3.1)."""


class IntervalPeriod(Oadr3Struct, frozen=True, kw_only=True):
    """``intervalPeriod``: start and duration of an interval or of an event's intervals."""

    start: AwareDatetime | UnsetType = UNSET
    duration: Duration | UnsetType = UNSET
    randomize_start: Duration | UnsetType = UNSET


class Interval(Oadr3Struct, frozen=True, kw_only=True):
    """``interval``: ``id`` is a number the VTN gave, not a sequence number."""

    id: Int32
    interval_period: IntervalPeriod | UnsetType = UNSET
    payloads: tuple[ValuesMap, ...]


class EventPayloadDescriptor(Oadr3Struct, frozen=True, kw_only=True):
    """``eventPayloadDescriptor``: the units and currency of an event's payloads of a type."""

    object_type: Literal["EVENT_PAYLOAD_DESCRIPTOR"] | UnsetType = UNSET
    payload_type: Name
    units: str | None = None
    currency: str | None = None


class ReportPayloadDescriptor(Oadr3Struct, frozen=True, kw_only=True):
    """``reportPayloadDescriptor``: the units and reading type of a report's payloads."""

    object_type: Literal["REPORT_PAYLOAD_DESCRIPTOR"] | UnsetType = UNSET
    payload_type: Name
    reading_type: str | None = None
    units: str | None = None
    accuracy: Number | None = None
    confidence: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None


class PayloadDescriptor(Oadr3Struct, frozen=True, kw_only=True):
    """An item of ``program.payloadDescriptors``: an event or a report payload descriptor, told
    apart by ``objectType`` (which 3.0 leaves optional): the properties of both."""

    object_type: Literal["EVENT_PAYLOAD_DESCRIPTOR", "REPORT_PAYLOAD_DESCRIPTOR"] | UnsetType = (
        UNSET
    )
    payload_type: Name
    units: str | None = None
    currency: str | None = None
    reading_type: str | None = None
    accuracy: Number | None = None
    confidence: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None


class ReportDescriptor(Oadr3Struct, frozen=True, kw_only=True):
    """``reportDescriptor``: a report an event asks of the VEN."""

    payload_type: Name
    reading_type: str | None = None
    units: str | None = None
    targets: tuple[Target, ...] | None = None
    aggregate: bool = False
    start_interval: Int32 = -1
    num_intervals: Int32 = -1
    historical: bool = True
    frequency: Int32 = -1
    repeat: Int32 = 1


class ProgramDescription(Oadr3Struct, frozen=True, kw_only=True):
    url: str = msgspec.field(name="URL")


class Program(Oadr3Struct, frozen=True, kw_only=True):
    """``program``: a demand response program of the VTN."""

    id: ObjectId | UnsetType = UNSET
    created_date_time: AwareDatetime | UnsetType = UNSET
    modification_date_time: AwareDatetime | UnsetType = UNSET
    object_type: Literal["PROGRAM"] | UnsetType = UNSET
    program_name: Name
    program_long_name: str | None = None
    retailer_name: str | None = None
    retailer_long_name: str | None = None
    program_type: str | None = None
    country: str | None = None
    principal_subdivision: str | None = None
    time_zone_offset: Duration | UnsetType = UNSET
    interval_period: IntervalPeriod | UnsetType = UNSET
    program_descriptions: tuple[ProgramDescription, ...] | None = None
    binding_events: bool | None = None
    local_price: bool | None = None
    payload_descriptors: tuple[PayloadDescriptor, ...] | None = None
    targets: tuple[Target, ...] | None = None
    attributes: tuple[ValuesMap, ...] | None = None  # 3.1


class Event(Oadr3Struct, frozen=True, kw_only=True):
    """``event``: a demand response request of a program; ``intervalPeriod`` sets the default
    start and duration of its intervals."""

    id: ObjectId | UnsetType = UNSET
    created_date_time: AwareDatetime | UnsetType = UNSET
    modification_date_time: AwareDatetime | UnsetType = UNSET
    object_type: Literal["EVENT"] | UnsetType = UNSET
    program_id: ObjectId = msgspec.field(name="programID")
    event_name: str | None = None
    priority: Annotated[int, msgspec.Meta(ge=0)] | None = None
    targets: tuple[Target, ...] | None = None
    report_descriptors: tuple[ReportDescriptor, ...] | None = None
    payload_descriptors: tuple[EventPayloadDescriptor, ...] | None = None
    interval_period: IntervalPeriod | UnsetType = UNSET
    intervals: tuple[Interval, ...] = ()  # required in 3.0, optional in 3.1
    duration: Duration | UnsetType = UNSET  # 3.1: loops the intervals; not used


class ReportResource(Oadr3Struct, frozen=True, kw_only=True):
    """An item of ``report.resources``: the report's data of one resource."""

    resource_name: Name
    interval_period: IntervalPeriod | UnsetType = UNSET
    intervals: tuple[Interval, ...]


class Report(Oadr3Struct, frozen=True, kw_only=True):
    """``report``: what a VEN sends the VTN about an event."""

    id: ObjectId | UnsetType = UNSET
    created_date_time: AwareDatetime | UnsetType = UNSET
    modification_date_time: AwareDatetime | UnsetType = UNSET
    object_type: Literal["REPORT"] | UnsetType = UNSET
    program_id: ObjectId | UnsetType = msgspec.field(name="programID", default=UNSET)  # 3.0 only
    event_id: ObjectId = msgspec.field(name="eventID")
    client_name: Name
    report_name: str | None = None
    payload_descriptors: tuple[ReportPayloadDescriptor, ...] | None = None
    resources: tuple[ReportResource, ...]


class ClientCredentialResponse(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename=None
):
    """``clientCredentialResponse`` (RFC 6749 5.1, snake_case on the wire)."""

    access_token: Secret
    token_type: str
    expires_in: int | UnsetType = UNSET
    refresh_token: Secret | UnsetType = UNSET
    scope: str | UnsetType = UNSET


class AuthError(msgspec.Struct, frozen=True, kw_only=True):
    """``authError`` (RFC 6749 5.2): the token endpoint's refusal."""

    error: str
    error_description: str | UnsetType = UNSET


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """``problem`` (RFC 7807): what the API answers with a refusal."""

    title: str | UnsetType = UNSET
    status: int | UnsetType = UNSET
    detail: str | UnsetType = UNSET
