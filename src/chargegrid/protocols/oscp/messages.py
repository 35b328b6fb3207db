"""The ten OSCP 2.0 message bodies (OSCP 2.0 FINAL 2020-10-12, chapter "Messages"), one frozen
msgspec struct each, named as the OCA JSON Schemas title them.

The field ``type`` of the two forecast messages is :attr:`forecast_type` in Python (``type`` is a
builtin) and ``type`` on the wire. Lists are tuples, so messages are immutable and hashable.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from chargegrid.protocols.oscp.datatypes import (
    UNSET,
    AssetMeasurement,
    AwareDatetime,
    CapacityForecastType,
    EnergyMeasurement,
    ForecastedBlock,
    OscpStruct,
    RequiredBehaviour,
    Token,
    UnsetType,
    VersionUrl,
)

__all__ = [
    "AdjustGroupCapacityForecast",
    "Error",
    "GroupCapacityComplianceError",
    "Handshake",
    "HandshakeAcknowledge",
    "Heartbeat",
    "Message",
    "Register",
    "UpdateAssetMeasurements",
    "UpdateGroupCapacityForecast",
    "UpdateGroupMeasurements",
]

ForecastedBlocks = Annotated[tuple[ForecastedBlock, ...], msgspec.Meta(min_length=1)]


class Register(OscpStruct, frozen=True, kw_only=True):
    """register.json: the sender's token for the receiver to use when calling it, and the
    versions it speaks with their base URLs (at least one). Sent by both parties of a
    registration. The token is a :class:`Token`, so the struct's repr does not show it."""

    token: Token
    version_url: Annotated[tuple[VersionUrl, ...], msgspec.Meta(min_length=1)]


class Handshake(OscpStruct, frozen=True, kw_only=True):
    """handshake.json: the behaviour the sender requires of the receiver (heartbeat interval,
    measurement configuration). Optional in the schema."""

    required_behaviour: RequiredBehaviour | UnsetType = UNSET


class HandshakeAcknowledge(OscpStruct, frozen=True, kw_only=True):
    """handshake-acknowledge.json: the answer to a Handshake, with the receiver's own
    required behaviour (optional in the schema)."""

    required_behaviour: RequiredBehaviour | UnsetType = UNSET


class Heartbeat(OscpStruct, frozen=True, kw_only=True):
    """heartbeat.json: the sender is alive, and the receiver is to consider it offline (and
    fall back to FALLBACK_* forecasts) from ``offline_mode_at`` on, unless another arrives."""

    offline_mode_at: AwareDatetime


class UpdateGroupCapacityForecast(OscpStruct, frozen=True, kw_only=True):
    """update-group-capacity-forecast.json: the capacity a Capacity Provider grants a group
    (or, from a Capacity Optimizer, the OPTIMUM), one or more forecasted blocks."""

    group_id: str
    forecast_type: CapacityForecastType = msgspec.field(name="type")
    forecasted_blocks: ForecastedBlocks


class AdjustGroupCapacityForecast(OscpStruct, frozen=True, kw_only=True):
    """adjust-group-capacity-forecast.json: the Flexibility Provider asks the Capacity
    Provider for other capacity for a group."""

    group_id: str
    forecast_type: CapacityForecastType = msgspec.field(name="type")
    forecasted_blocks: ForecastedBlocks


class GroupCapacityComplianceError(OscpStruct, frozen=True, kw_only=True):
    """group-capacity-compliance-error.json: the Flexibility Provider cannot keep to a
    forecast; ``forecasted_blocks`` (optional) are the blocks concerned, the ones it cannot keep
    to. The schema has no ``group_id``: the message names the group."""

    message: str
    forecasted_blocks: ForecastedBlocks | UnsetType = UNSET


class UpdateGroupMeasurements(OscpStruct, frozen=True, kw_only=True):
    """update-group-measurements.json: a group's meter readings (at least one)."""

    group_id: str
    measurements: Annotated[tuple[EnergyMeasurement, ...], msgspec.Meta(min_length=1)]


class UpdateAssetMeasurements(OscpStruct, frozen=True, kw_only=True):
    """update-asset-measurements.json: readings per asset of a group (at least one)."""

    group_id: str
    measurements: Annotated[tuple[AssetMeasurement, ...], msgspec.Meta(min_length=1)]


class Error(OscpStruct, frozen=True, kw_only=True):
    """error.json: the optional body of an HTTP error answer; not posted to an endpoint."""

    message: str | UnsetType = UNSET


Message = (
    Register
    | Handshake
    | HandshakeAcknowledge
    | Heartbeat
    | UpdateGroupCapacityForecast
    | AdjustGroupCapacityForecast
    | GroupCapacityComplianceError
    | UpdateGroupMeasurements
    | UpdateAssetMeasurements
    | Error
)
