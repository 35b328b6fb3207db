"""The OSCP 2.0 data types the messages are made of (OSCP 2.0 FINAL 2020-10-12, chapter
"Data types"), as frozen msgspec structs whose attribute names are the wire's snake_case names.

Decoding enforces what the OCA JSON Schemas state: required fields, enumerations, ``minItems``,
``uniqueItems``, ``minimum``, and ``format: date-time`` (RFC 3339, so an offset is required and
times decode to aware datetimes). An optional field that is absent is :data:`msgspec.UNSET`, not
None: the schemas give no field a ``null`` type, so ``null`` is refused and UNSET is left out when
encoding. Numbers are floats and must be finite (JSON has no NaN or infinity).
"""

from __future__ import annotations

import enum
import hmac
import sys
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "UNSET",
    "AssetCategory",
    "AssetMeasurement",
    "AwareDatetime",
    "CapacityForecastType",
    "EnergyFlowDirection",
    "EnergyMeasurement",
    "EnergyMeasurementUnit",
    "EnergyType",
    "ForecastedBlock",
    "ForecastedBlockUnit",
    "InstantaneousMeasurement",
    "InstantaneousMeasurementUnit",
    "MeasurementConfiguration",
    "NonNegative",
    "Number",
    "OscpStruct",
    "PhaseIndicator",
    "RequiredBehaviour",
    "Token",
    "UnsetType",
    "VersionUrl",
]

_MAX = sys.float_info.max

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
"""``"type": "string", "format": "date-time"``: RFC 3339, with a UTC offset."""
Number = Annotated[float, msgspec.Meta(ge=-_MAX, le=_MAX)]
"""``"type": "number"``, finite."""
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=_MAX)]
"""``"type": "number", "minimum": 0``, finite."""


class Token:
    """An OSCP token (Register ``token``, the ``Authorization: Token ...`` credential): a shared
    secret. Its repr and str are redacted, so neither a struct's repr nor an f-string leaks it;
    :meth:`reveal` is the one way to the value. Equality is constant-time."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("an OSCP token is a string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Token('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


class OscpStruct(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Unknown fields are ignored: the schemas do not set ``additionalProperties: false``."""


class PhaseIndicator(enum.Enum):
    """phase-indicator.json: the phase a value applies to."""

    UNKNOWN = "UNKNOWN"
    ONE = "ONE"
    TWO = "TWO"
    THREE = "THREE"
    ALL = "ALL"


class ForecastedBlockUnit(enum.Enum):
    """forecasted-block-unit.json."""

    A = "A"
    W = "W"
    KW = "KW"
    WH = "WH"
    KWH = "KWH"


class InstantaneousMeasurementUnit(enum.Enum):
    """instantaneous-measurement-unit.json (the same values as :class:`ForecastedBlockUnit`)."""

    A = "A"
    W = "W"
    KW = "KW"
    WH = "WH"
    KWH = "KWH"


class EnergyMeasurementUnit(enum.Enum):
    """energy-measurement-unit.json."""

    WH = "WH"
    KWH = "KWH"


class EnergyFlowDirection(enum.Enum):
    """energy-flow-direction.json."""

    NET = "NET"
    IMPORT = "IMPORT"
    EXPORT = "EXPORT"


class EnergyType(enum.Enum):
    """energy-type.json."""

    FLEXIBLE = "FLEXIBLE"
    NONFLEXIBLE = "NONFLEXIBLE"
    TOTAL = "TOTAL"


class AssetCategory(enum.Enum):
    """asset-category.json."""

    CHARGING = "CHARGING"
    CONSUMPTION = "CONSUMPTION"
    GENERATION = "GENERATION"
    STORAGE = "STORAGE"


class CapacityForecastType(enum.Enum):
    """capacity-forecast-type.json: a limit on consumption or generation (FALLBACK_* while
    the parties are offline from each other), or OPTIMUM, a target rather than a limit."""

    CONSUMPTION = "CONSUMPTION"
    GENERATION = "GENERATION"
    FALLBACK_CONSUMPTION = "FALLBACK_CONSUMPTION"
    FALLBACK_GENERATION = "FALLBACK_GENERATION"
    OPTIMUM = "OPTIMUM"


class MeasurementConfiguration(enum.Enum):
    """measurement-configuration.json: meter registers that never reset (CONTINUOUS) or that
    reset at events such as a charging session's start (INTERMITTENT)."""

    CONTINUOUS = "CONTINUOUS"
    INTERMITTENT = "INTERMITTENT"


class VersionUrl(OscpStruct, frozen=True, kw_only=True):
    """version-url.json: an OSCP version a party speaks and the base URL of its endpoints."""

    version: str
    base_url: str


class RequiredBehaviour(OscpStruct, frozen=True, kw_only=True):
    """required-behaviour.json, carried by Handshake and HandshakeAcknowledge.

    ``heartbeat_interval`` is in seconds. ``measurement_configuration`` is required and its
    items unique (``uniqueItems``); the schema sets no ``minItems``, so it may be empty.
    """

    heartbeat_interval: Number | UnsetType = UNSET
    measurement_configuration: tuple[MeasurementConfiguration, ...]

    def __post_init__(self) -> None:
        if len(set(self.measurement_configuration)) != len(self.measurement_configuration):
            raise ValueError("measurement_configuration items must be unique")


class ForecastedBlock(OscpStruct, frozen=True, kw_only=True):
    """forecasted-block.json: ``capacity`` (at least 0) in ``unit`` on ``phase`` from
    ``start_time`` to ``end_time``."""

    capacity: NonNegative
    phase: PhaseIndicator
    unit: ForecastedBlockUnit
    start_time: AwareDatetime
    end_time: AwareDatetime


class EnergyMeasurement(OscpStruct, frozen=True, kw_only=True):
    """energy-measurement.json: a meter register reading (``initial_measure_time`` is when an
    INTERMITTENT register last reset)."""

    value: Number
    phase: PhaseIndicator
    unit: EnergyMeasurementUnit
    direction: EnergyFlowDirection
    energy_type: EnergyType | UnsetType = UNSET
    measure_time: AwareDatetime
    initial_measure_time: AwareDatetime | UnsetType = UNSET


class InstantaneousMeasurement(OscpStruct, frozen=True, kw_only=True):
    """instantaneous-measurement.json: a current or power reading."""

    value: Number
    phase: PhaseIndicator
    unit: InstantaneousMeasurementUnit
    measure_time: AwareDatetime


class AssetMeasurement(OscpStruct, frozen=True, kw_only=True):
    """asset-measurement.json: the readings of one asset of a group."""

    asset_id: str
    asset_category: AssetCategory
    energy_measurement: EnergyMeasurement | UnsetType = UNSET
    instantaneous_measurement: InstantaneousMeasurement | UnsetType = UNSET
