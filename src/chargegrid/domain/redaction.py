"""Secrets inside OCPP payloads, blanked before a payload is kept (message log, command log).

The CSMS sends a station its secrets in a few requests; nothing a station sends carries one
(1.6 GetConfiguration must not return AuthorizationKey: whitepaper 2.4; 2.0.1 BasicAuthPassword is
write-only):

* 1.6 ChangeConfiguration with key ``AuthorizationKey`` (whitepaper 2.4, the Basic password);
* 2.0.1 SetVariables of ``BasicAuthPassword`` (A01) -- both names in any case;
* the ``user:password@`` of the URLs in UpdateFirmware, SignedUpdateFirmware, GetLog and
  GetDiagnostics (stations fetch firmware and upload logs with them);
* 2.0.1 SetNetworkProfile: ``apn.apnPassword``, ``apn.simPin``, ``vpn.password`` and ``vpn.key``
  (B09).

Each such value becomes :data:`REDACTED`; the rest of the payload is kept as it is. Pure
functions on JSON-shaped dicts (the version's own camelCase field names).
"""

from __future__ import annotations

import copy
import re
from typing import Any

REDACTED = "***"

#: The actions whose requests can carry a secret.
ACTIONS = frozenset(
    {
        "ChangeConfiguration",
        "SetVariables",
        "SetNetworkProfile",
        "UpdateFirmware",
        "SignedUpdateFirmware",
        "GetLog",
        "GetDiagnostics",
    }
)

#: Settings whose values are secrets (names compare case-insensitively: 1.6 keys are CiString,
#: 2.0.1 component and variable names case-insensitive).
_SECRET_SETTINGS = frozenset({"authorizationkey", "basicauthpassword"})
_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
#: Where an action carries a URL (dotted path), whose user:password@ is a secret.
_LOCATIONS = {
    "UpdateFirmware": ("location", "firmware.location"),  # 1.6 core: top level; 2.0.1: nested
    "SignedUpdateFirmware": ("firmware.location",),
    "GetLog": ("log.remoteLocation",),
    "GetDiagnostics": ("location",),
}


def is_secret_setting(name: str) -> bool:
    """A 1.6 configuration key or 2.0.1 variable whose value is a secret."""
    return name.casefold() in _SECRET_SETTINGS


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``."""
    return _USERINFO.sub(rf"\1{REDACTED}@", url)


def redact(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with its secrets blanked (a copy when there are any; else ``payload``)."""
    if action not in ACTIONS or not isinstance(payload, dict):
        return payload
    if action == "ChangeConfiguration":
        key = payload.get("key")
        if isinstance(key, str) and is_secret_setting(key) and "value" in payload:
            return {**payload, "value": REDACTED}
        return payload
    if action in _LOCATIONS:
        return _redact_locations(payload, _LOCATIONS[action])
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
    variable = item.get("variable") if isinstance(item, dict) else None
    name = variable.get("name") if isinstance(variable, dict) else None
    return isinstance(name, str) and is_secret_setting(name)


def _redact_locations(payload: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    blanked = payload
    for path in paths:
        *parents, last = path.split(".")
        holder: Any = blanked
        for name in parents:
            holder = holder.get(name) if isinstance(holder, dict) else None
        url = holder.get(last) if isinstance(holder, dict) else None
        if isinstance(url, str) and without_userinfo(url) != url:
            if blanked is payload:
                blanked = copy.deepcopy(payload)
            target: Any = blanked
            for name in parents:
                target = target[name]
            target[last] = without_userinfo(url)
    return blanked
