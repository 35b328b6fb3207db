"""Bytes to typed OpenADR 3 objects and back, and the requests a VEN makes, sans I/O.

Whatever the bytes, the ``decode_*`` functions return the typed object or raise
:class:`OpenAdrError` (status 400); :func:`refusal` turns a VTN's non-2xx answer into one with
the VTN's status. :func:`encode` checks its result against the same constraints before
returning it, so chargegrid never posts a report the VTN must refuse (500 otherwise: a bug).

A list the API answers (``GET /programs``, ``GET /events``) is split by :func:`decode_array` and
each item decoded on its own, so one object a VEN cannot read does not hide the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

import msgspec

from chargegrid.protocols.openadr3.datatypes import Duration, Secret
from chargegrid.protocols.openadr3.errors import BAD_REQUEST, INTERNAL, OpenAdrError
from chargegrid.protocols.openadr3.messages import (
    AuthError,
    ClientCredentialResponse,
    Event,
    Problem,
    Program,
    Report,
)

__all__ = [
    "FORM",
    "JSON",
    "PAGE_LIMIT",
    "collection_url",
    "decode_array",
    "decode_event",
    "decode_program",
    "decode_report",
    "decode_token",
    "encode",
    "object_id",
    "refusal",
    "token_request",
]

PAGE_LIMIT = 50  # the most a search answers per request (``limit`` maximum 50)
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
_T = TypeVar("_T")
_TOKEN_MAX = 4096  # clientCredentialResponse.access_token maxLength


def _dec_hook(kind: type, obj: Any) -> Any:
    if kind is Duration and isinstance(obj, str):
        return Duration.parse(obj)
    if kind is Secret and isinstance(obj, str):
        if not 1 <= len(obj) <= _TOKEN_MAX:
            raise ValueError(f"a token has 1 to {_TOKEN_MAX} characters")
        return Secret(obj)
    raise TypeError(f"expected a string for {kind.__name__}")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Duration):
        return str(obj)
    # msgspec's protocol for an enc_hook: NotImplementedError for a type it does not encode
    raise NotImplementedError(f"{type(obj).__name__} is not part of an OpenADR 3 object")


class _Identified(msgspec.Struct):
    id: str


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_ID = msgspec.json.Decoder(_Identified)
_EVENT = msgspec.json.Decoder(Event, dec_hook=_dec_hook)
_PROGRAM = msgspec.json.Decoder(Program, dec_hook=_dec_hook)
_REPORT = msgspec.json.Decoder(Report, dec_hook=_dec_hook)
_TOKEN = msgspec.json.Decoder(ClientCredentialResponse, dec_hook=_dec_hook)
_PROBLEM = msgspec.json.Decoder(Problem)
_AUTH_ERROR = msgspec.json.Decoder(AuthError)


def _decode(decoder: msgspec.json.Decoder[_T], body: bytes, what: str) -> _T:
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise OpenAdrError(f"not a valid {what}: {exc}", BAD_REQUEST) from exc
    except RecursionError as exc:  # msgspec recurses into unknown properties it skips
        raise OpenAdrError(f"not a valid {what}: nested too deeply", BAD_REQUEST) from exc


def decode_array(body: bytes) -> list[bytes]:
    """The items of a JSON array (the answer of a search), each still to decode."""
    return [bytes(item) for item in _decode(_ARRAY, body, "JSON array")]


def decode_event(body: bytes) -> Event:
    return _decode(_EVENT, body, "event")


def decode_program(body: bytes) -> Program:
    return _decode(_PROGRAM, body, "program")


def decode_report(body: bytes) -> Report:
    return _decode(_REPORT, body, "report")


def decode_token(body: bytes) -> ClientCredentialResponse:
    """The token endpoint's answer; ``token_type`` must be ``Bearer`` (compared without case,
    as RFC 6749 7.1 says)."""
    answer = _decode(_TOKEN, body, "clientCredentialResponse")
    if answer.token_type.lower() != "bearer":
        raise OpenAdrError(f"token type {answer.token_type[:32]!r}, not Bearer", BAD_REQUEST)
    return answer


def object_id(body: bytes) -> str | None:
    """The ``id`` of an object that may not decode otherwise, if it has a usable one."""
    try:
        found = _ID.decode(body).id
    except (msgspec.DecodeError, RecursionError):
        return None
    return found if 0 < len(found) <= 128 else None


def refusal(status: int, body: bytes) -> OpenAdrError:
    """A VTN's non-2xx answer as an error with its status and what its ``problem`` (or, from the
    token endpoint, ``authError``) body says, if it has one."""
    said = ""
    try:
        said = _AUTH_ERROR.decode(body).error
    except (msgspec.DecodeError, RecursionError):
        try:
            problem = _PROBLEM.decode(body)
        except (msgspec.DecodeError, RecursionError):
            problem = Problem()
        parts = (problem.title, problem.detail)
        said = " ".join(p for p in parts if not isinstance(p, msgspec.UnsetType))
    text = f"the VTN answered {status}" + (f": {said[:200]}" if said else "")
    return OpenAdrError(text, status)


def encode(report: Report) -> bytes:
    """The JSON body of ``report``; :class:`OpenAdrError` (500, a bug of ours) when it breaks a
    constraint of its schema, such as a naive datetime, NaN, or an empty name."""
    try:
        body = _ENCODER.encode(report)
        _REPORT.decode(body)
    except (msgspec.MsgspecError, TypeError, ValueError, OverflowError) as exc:
        raise OpenAdrError(f"a report breaks its schema: {exc}", INTERNAL) from exc
    return body


def token_request(client_id: str, secret: Secret, scope: str = "") -> bytes:
    """The ``x-www-form-urlencoded`` body of ``POST /auth/token`` (``clientCredentialRequest``,
    the OAuth 2.0 client credentials grant, RFC 6749 4.4), the secret in it."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret.reveal(),
    }
    if scope:
        form["scope"] = scope
    return urlencode(form).encode()


def collection_url(
    base_url: str, collection: str, params: Mapping[str, str | int] | None = None
) -> str:
    """``{base_url}/{collection}`` with the query ``params`` (``skip``, ``limit``, ...)."""
    url = f"{base_url.rstrip('/')}/{collection}"
    return f"{url}?{urlencode(dict(params))}" if params else url
