"""Errors of the OCPP-J RPC layer.

OCPP-J (OCPP 1.6 JSON spec section 4.2.3, OCPP 2.0.1 Part 4 section 4.3) answers bad input with a
CALLERROR whose code depends on what was wrong. The codes differ between versions (1.6 spells
``FormationViolation`` and ``OccurenceConstraintViolation``; 2.0.1 adds ``RpcFrameworkError`` and
``MessageTypeNotSupported``), so errors here carry a version-neutral :class:`ErrorKind` and the
dialect turns it into the wire code.

Error tree::

    OcppError                 anything that becomes a CALLERROR; carries kind, description, details
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorKind(enum.Enum):
    """What went wrong, independent of the OCPP version that reports it."""

    RPC_FRAMEWORK = "rpc-framework"  # the frame itself cannot be read
    MESSAGE_TYPE_NOT_SUPPORTED = "message-type-not-supported"
    FORMAT = "format"  # payload syntactically wrong for its action (bad JSON, unknown field)
    PROTOCOL = "protocol"  # payload incomplete / frame has the wrong number of elements
    PROPERTY_CONSTRAINT = "property-constraint"  # a value out of range, too long, not in enum
    OCCURRENCE_CONSTRAINT = "occurrence-constraint"  # a required field or array item missing
    TYPE_CONSTRAINT = "type-constraint"  # a value of the wrong JSON type
    NOT_IMPLEMENTED = "not-implemented"  # action unknown
    NOT_SUPPORTED = "not-supported"  # action known, but not accepted in this direction
    SECURITY = "security"  # not allowed in the station's current state
    INTERNAL = "internal"  # our own fault while handling a valid message
    GENERIC = "generic"


class OcppError(Exception):
    """An error answered to the peer as a CALLERROR (or received from it as one)."""

    def __init__(
        self, kind: ErrorKind, description: str = "", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{kind.value}: {description}")
        self.kind = kind
        self.description = description
        self.details: dict[str, Any] = details or {}
