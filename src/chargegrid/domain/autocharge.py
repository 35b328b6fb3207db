"""Autocharge: a car identified by its MAC address, authorized through the driver it belongs to.

Autocharge (as in Open e-Mobility and several station makers) is plug-and-charge without ISO
15118 certificates: at plug-in the station reads the EV's MAC address from the DIN 70121 /
ISO 15118 SLAC / SDP exchange (its EVCCID) and presents it as the id token:

* OCPP 1.6: an idTag ``VID:`` followed by the MAC (``VID:0011223344AA``; most makers write the 12
  hex digits, some with separators);
* OCPP 2.0.1: an IdToken of type ``MacAddress`` (C01), with or without the ``VID:`` prefix.

Both become one canonical value, ``VID:`` and 12 upper-case hex digits. A vehicle is registered as
an id token of kind ``MacAddress`` with that value and the driver as its owner, so it has the
standing of any token: blocked, expired, its group, the concurrent-use rule.
"""

from __future__ import annotations

import re

PREFIX = "VID:"
_SEPARATORS = re.compile(r"[:\-. ]")
_HEX12 = re.compile(r"[0-9A-F]{12}")


class MacAddressError(ValueError):
    """Not a MAC address (EUI-48: 12 hex digits, separators allowed)."""


def vehicle_token(value: str) -> str:
    """The canonical token of a vehicle MAC address, with or without ``VID:``; raises
    :class:`MacAddressError`."""
    mac = value[len(PREFIX) :] if value[: len(PREFIX)].upper() == PREFIX else value
    digits = _SEPARATORS.sub("", mac).upper()
    if not _HEX12.fullmatch(digits):
        raise MacAddressError(f"{value!r} is not a MAC address (12 hex digits)")
    return PREFIX + digits


def canonical(value: str, mac_address: bool = False) -> str:
    """The token value chargegrid keys ``value`` by: a vehicle MAC (``mac_address``: the station
    said so, 2.0.1 type MacAddress; or a ``VID:`` prefix) in canonical form, anything else as it
    is. A ``VID:`` value that is no MAC address stays as it is (and is unknown)."""
    if mac_address or value[: len(PREFIX)].upper() == PREFIX:
        try:
            return vehicle_token(value)
        except MacAddressError:
            return value
    return value
