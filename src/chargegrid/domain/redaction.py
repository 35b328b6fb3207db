"""Secrets inside OCPP payloads, blanked before a payload is kept (message log, command log).

The CSMS sends a station its secrets in a few requests; nothing a station sends carries one
(1.6 GetConfiguration must not return AuthorizationKey: whitepaper 2.4; 2.0.1 BasicAuthPassword is
write-only):

* 1.6 ChangeConfiguration with key ``AuthorizationKey`` (whitepaper 2.4, the Basic password);
* 2.0.1 SetVariables of ``BasicAuthPassword`` (A01);
* 2.0.1 SetNetworkProfile: ``apn.apnPassword``, ``apn.simPin``, ``vpn.password`` and ``vpn.key``
  (B09).

Each such value becomes :data:`REDACTED`; the rest of the payload is kept as it is. Pure
functions on JSON-shaped dicts (the version's own camelCase field names).
"""

from __future__ import annotations

import copy
from typing import Any

REDACTED = "***"

#: The actions whose requests can carry a secret.
ACTIONS = frozenset({"ChangeConfiguration", "SetVariables", "SetNetworkProfile"})


def redact(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its secrets blanked (a copy when there are any; else ``payload``)."""
    if action not in ACTIONS or not isinstance(payload, dict):
        return payload
    if action == "ChangeConfiguration":
        if payload.get("key") == "AuthorizationKey" and "value" in payload:
            return {**payload, "value": REDACTED}
        return payload
    if action == "SetVariables":
        data = payload.get("setVariableData")
        if not isinstance(data, list) or not any(_is_password(item) for item in data):
            return payload
        return {
            **payload,
            "setVariableData": [
                {**item, "attributeValue": REDACTED} if _is_password(item) else item
                for item in data
            ],
        }
    connection = payload.get("connectionData")
    if not isinstance(connection, dict):
        return payload
    blanked = copy.deepcopy(payload)
    for section, fields in (("apn", ("apnPassword", "simPin")), ("vpn", ("password", "key"))):
        part = blanked["connectionData"].get(section)
        if isinstance(part, dict):
            for name in fields:
                if name in part:
                    part[name] = REDACTED
    return blanked


def _is_password(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("variable"), dict)
        and item["variable"].get("name") == "BasicAuthPassword"
    )
