"""Bytes to typed OSCP 2.0 messages and back, sans I/O.

:func:`decode` takes the path segment's message name and the request body; whatever the bytes,
it returns the typed message or raises :class:`OscpError` (HTTP 400 for a body that is not the
message, 404 for a name that is none). :func:`encode` checks its result against the same
constraints before returning it, so chargegrid never posts a message a peer must refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from chargegrid.protocols.oscp.datatypes import Token
from chargegrid.protocols.oscp.errors import BAD_REQUEST, INTERNAL, NOT_FOUND, OscpError
from chargegrid.protocols.oscp.messages import Message
from chargegrid.protocols.oscp.table import MESSAGES, spec_of

__all__ = ["decode", "encode"]


def _dec_hook(kind: type, obj: Any) -> Any:
    if kind is Token and isinstance(obj, str):
        return Token(obj)
    raise TypeError(f"expected a string for {kind.__name__}")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Token):
        return obj.reveal()
    raise NotImplementedError(f"{type(obj).__name__} is not part of an OSCP message")


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)
_DECODERS: Mapping[str, msgspec.json.Decoder[Any]] = MappingProxyType(
    {
        name: msgspec.json.Decoder(spec.message_type, dec_hook=_dec_hook)
        for name, spec in MESSAGES.items()
    }
)


def decode(message_name: str, body: bytes) -> Message:
    """The ``message_name`` message (snake_case, e.g. ``"update_group_capacity_forecast"``,
    or ``"error"``) that ``body`` holds, checked against its OSCP 2.0 schema."""
    decoder = _DECODERS.get(message_name)
    if decoder is None:
        raise OscpError(f"{message_name[:64]!r} is no OSCP 2.0 message", NOT_FOUND)
    title = MESSAGES[message_name].title
    try:
        message: Message = decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise OscpError(f"not a valid {title}: {exc}", BAD_REQUEST) from exc
    except RecursionError as exc:  # msgspec recurses into unknown fields it skips
        raise OscpError(f"not a valid {title}: nested too deeply", BAD_REQUEST) from exc
    return message


def encode(message: Message) -> bytes:
    """The JSON body of ``message``; :class:`OscpError` (500, a bug of ours) when it breaks a
    constraint of its schema, such as a naive datetime, NaN, or an empty list."""
    spec = spec_of(message)
    try:
        body = _ENCODER.encode(message)
        _DECODERS[spec.name].decode(body)
    except (msgspec.MsgspecError, TypeError, ValueError, OverflowError) as exc:
        raise OscpError(f"{spec.title} breaks its schema: {exc}", INTERNAL) from exc
    return body
