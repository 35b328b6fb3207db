"""The OSCP 2.0 message table: each message's name, which is also its endpoint's path segment
(``POST {base_url}/<name>``, where ``base_url`` is the peer's VersionUrl for "2.0", e.g.
``https://cp.example/oscp/cp/2.0``), its type, and who sends it to whom.

Who sends what (OSCP 2.0 FINAL 2020-10-12, the message definitions and their use cases):

* Register, Handshake, HandshakeAcknowledge, Heartbeat: either party of a link, CP and FP or
  FP and CO.
* UpdateGroupCapacityForecast: CP to FP; FP to CO (forwarded); CO to FP (OPTIMUM).
* AdjustGroupCapacityForecast, GroupCapacityComplianceError, UpdateGroupMeasurements: FP to CP.
* UpdateAssetMeasurements: FP to CO.
* Error: no endpoint; the body of an HTTP error answer to any of them.

The table is a constant built at import from literals, not a registry anything adds to.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from chargegrid.protocols.oscp.errors import NOT_FOUND, OscpError
from chargegrid.protocols.oscp.messages import (
    AdjustGroupCapacityForecast,
    Error,
    GroupCapacityComplianceError,
    Handshake,
    HandshakeAcknowledge,
    Heartbeat,
    Message,
    Register,
    UpdateAssetMeasurements,
    UpdateGroupCapacityForecast,
    UpdateGroupMeasurements,
)

__all__ = [
    "MESSAGES",
    "MessageSpec",
    "Role",
    "endpoint_url",
    "lookup",
    "spec_of",
]


class Role(enum.Enum):
    """The OSCP 2.0 roles (chapter "Topology")."""

    CAPACITY_PROVIDER = "CP"
    FLEXIBILITY_PROVIDER = "FP"
    CAPACITY_OPTIMIZER = "CO"


_CP, _FP, _CO = Role.CAPACITY_PROVIDER, Role.FLEXIBILITY_PROVIDER, Role.CAPACITY_OPTIMIZER
Flow = tuple[Role, Role]  # (sender, receiver)


@dataclass(frozen=True)
class MessageSpec:
    """One row of the table. ``name`` is the snake_case message name and, when ``endpoint``,
    the path segment it is posted to; ``title`` is the name the spec and the schema use."""

    name: str
    title: str
    message_type: type[Message]
    flows: frozenset[Flow]
    endpoint: bool = True

    def sent_by(self, role: Role) -> bool:
        return any(sender is role for sender, _ in self.flows)

    def received_by(self, role: Role) -> bool:
        return any(receiver is role for _, receiver in self.flows)

    @property
    def direction(self) -> Literal["CP->FP", "FP->CP", "both"] | None:
        """Which way it goes between a Capacity Provider and a Flexibility Provider."""
        down, up = (_CP, _FP) in self.flows, (_FP, _CP) in self.flows
        if down and up:
            return "both"
        if down:
            return "CP->FP"
        return "FP->CP" if up else None


_LINKS = frozenset({(_CP, _FP), (_FP, _CP), (_FP, _CO), (_CO, _FP)})
_ROWS = (
    MessageSpec("register", "Register", Register, _LINKS),
    MessageSpec("handshake", "Handshake", Handshake, _LINKS),
    MessageSpec("handshake_acknowledge", "HandshakeAcknowledge", HandshakeAcknowledge, _LINKS),
    MessageSpec("heartbeat", "Heartbeat", Heartbeat, _LINKS),
    MessageSpec(
        "update_group_capacity_forecast",
        "UpdateGroupCapacityForecast",
        UpdateGroupCapacityForecast,
        frozenset({(_CP, _FP), (_FP, _CO), (_CO, _FP)}),
    ),
    MessageSpec(
        "adjust_group_capacity_forecast",
        "AdjustGroupCapacityForecast",
        AdjustGroupCapacityForecast,
        frozenset({(_FP, _CP)}),
    ),
    MessageSpec(
        "group_capacity_compliance_error",
        "GroupCapacityComplianceError",
        GroupCapacityComplianceError,
        frozenset({(_FP, _CP)}),
    ),
    MessageSpec(
        "update_group_measurements",
        "UpdateGroupMeasurements",
        UpdateGroupMeasurements,
        frozenset({(_FP, _CP)}),
    ),
    MessageSpec(
        "update_asset_measurements",
        "UpdateAssetMeasurements",
        UpdateAssetMeasurements,
        frozenset({(_FP, _CO)}),
    ),
    MessageSpec("error", "Error", Error, _LINKS, endpoint=False),
)

MESSAGES: Mapping[str, MessageSpec] = MappingProxyType({row.name: row for row in _ROWS})
"""Every OSCP 2.0 message by snake_case name (Error included, though it has no endpoint)."""
_BY_TYPE: Mapping[type[Message], MessageSpec] = MappingProxyType({r.message_type: r for r in _ROWS})


def lookup(path_segment: str) -> MessageSpec:
    """The message posted to ``.../2.0/<path_segment>``; :class:`OscpError` (404) for a
    segment that names no endpoint."""
    spec = MESSAGES.get(path_segment)
    if spec is None or not spec.endpoint:
        raise OscpError(f"no OSCP 2.0 endpoint {path_segment[:64]!r}", NOT_FOUND)
    return spec


def spec_of(message: Message) -> MessageSpec:
    """The table row of a message instance."""
    spec = _BY_TYPE.get(type(message))
    if spec is None:
        raise TypeError(f"{type(message).__name__} is not an OSCP 2.0 message")
    return spec


def endpoint_url(base_url: str, message: Message | MessageSpec) -> str:
    """Where to POST ``message``: the peer's 2.0 base URL (from its Register's VersionUrl)
    joined with the message's path segment."""
    spec = message if isinstance(message, MessageSpec) else spec_of(message)
    if not spec.endpoint:
        raise ValueError(f"{spec.title} is an error answer's body, not posted to an endpoint")
    return f"{base_url.rstrip('/')}/{spec.name}"
