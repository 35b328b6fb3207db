"""What differs between OCPP-J versions: subprotocol, messages, directions and error codes.

One :class:`Dialect` per OCPP version is built from that version's generated message table; the RPC
session (:mod:`chargegrid.protocols.ocppj.session`) is the same for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from chargegrid.protocols.ocppj.errors import ErrorKind

#: OCPP-J 1.6 section 4.2.3. "Occurence" is misspelt in the 1.6 specification and on the wire.
ERROR_CODES_16: Mapping[ErrorKind, str] = {
    ErrorKind.RPC_FRAMEWORK: "FormationViolation",
    ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED: "ProtocolError",
    ErrorKind.FORMAT: "FormationViolation",
    ErrorKind.PROTOCOL: "ProtocolError",
    ErrorKind.PROPERTY_CONSTRAINT: "PropertyConstraintViolation",
    ErrorKind.OCCURRENCE_CONSTRAINT: "OccurenceConstraintViolation",
    ErrorKind.TYPE_CONSTRAINT: "TypeConstraintViolation",
    ErrorKind.NOT_IMPLEMENTED: "NotImplemented",
    ErrorKind.NOT_SUPPORTED: "NotSupported",
    ErrorKind.SECURITY: "SecurityError",
    ErrorKind.INTERNAL: "InternalError",
    ErrorKind.GENERIC: "GenericError",
}

#: OCPP 2.0.1 Part 4 section 4.3.
ERROR_CODES_201: Mapping[ErrorKind, str] = {
    ErrorKind.RPC_FRAMEWORK: "RpcFrameworkError",
    ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED: "MessageTypeNotSupported",
    ErrorKind.FORMAT: "FormatViolation",
    ErrorKind.PROTOCOL: "ProtocolError",
    ErrorKind.PROPERTY_CONSTRAINT: "PropertyConstraintViolation",
    ErrorKind.OCCURRENCE_CONSTRAINT: "OccurrenceConstraintViolation",
    ErrorKind.TYPE_CONSTRAINT: "TypeConstraintViolation",
    ErrorKind.NOT_IMPLEMENTED: "NotImplemented",
    ErrorKind.NOT_SUPPORTED: "NotSupported",
    ErrorKind.SECURITY: "SecurityError",
    ErrorKind.INTERNAL: "InternalError",
    ErrorKind.GENERIC: "GenericError",
}


@dataclass(frozen=True)
class Dialect:
    """One OCPP-J version as the RPC session sees it.

    ``actions`` maps each action to its (request, response) types; ``station_actions`` are the
    actions a charging station may send to the CSMS (the rest go the other way; DataTransfer both).
    """

    version: str
    subprotocol: str
    actions: Mapping[str, tuple[type[msgspec.Struct], type[msgspec.Struct]]]
    station_actions: frozenset[str]
    error_codes: Mapping[ErrorKind, str]
    csms_actions: frozenset[str] = field(init=False)
    action_of: Mapping[type[msgspec.Struct], str] = field(init=False)
    kind_of: Mapping[str, ErrorKind] = field(init=False)

    def __post_init__(self) -> None:
        unknown = self.station_actions - self.actions.keys()
        if unknown:
            raise ValueError(f"station actions without messages: {sorted(unknown)}")
        csms = frozenset(a for a in self.actions if a not in self.station_actions)
        object.__setattr__(self, "csms_actions", csms | ({"DataTransfer"} & self.actions.keys()))
        object.__setattr__(self, "action_of", {req: a for a, (req, _) in self.actions.items()})
        kinds: dict[str, ErrorKind] = {}
        for kind, code in self.error_codes.items():
            kinds.setdefault(code, kind)
        object.__setattr__(self, "kind_of", kinds)

    def code(self, kind: ErrorKind) -> str:
        """The wire error code for ``kind`` in this version."""
        return self.error_codes[kind]
