"""Payload validation: strict decoding to typed messages, and the lenient mode.

Strict decoding is msgspec against the generated message types, which carry every constraint of
the OCA JSON schemas (lengths, enums, ranges, required fields, array bounds). A failure becomes an
:class:`OcppError` whose kind is the CALLERROR code OCPP-J prescribes for it (OCPP 2.0.1 Part 4,
section 4.3, table "Valid Error Codes"; OCPP-J 1.6 section 4.2.3).

Real chargers deviate from the schemas in a few known ways. A station set to lenient mode names the
deviations it may make; when strict decoding fails, the payload is walked alongside its type, each
listed deviation is repaired and reported, and the repaired payload is decoded strictly again. What
is not listed still fails, so nothing is guessed silently.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar, cast

import msgspec
import msgspec.inspect as mi

from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError

T = TypeVar("T")


class Deviation(enum.Enum):
    """A known way real firmware departs from the schemas that lenient mode may accept."""

    EXTRA_FIELDS = "extra-fields"  # properties the schema does not define
    ENUM_CASE = "enum-case"  # "charging" for "Charging"
    NUMBERS_AS_STRINGS = "numbers-as-strings"  # "12" where an integer or number is required
    STRINGS_AS_NUMBERS = "strings-as-numbers"  # 12 where a string is required (1.6 meter values)


@dataclass(frozen=True, slots=True)
class Repair:
    """One deviation accepted in lenient mode: which, where (a JSON path) and what was there."""

    deviation: Deviation
    path: str
    found: str


def classify(exc: msgspec.ValidationError | msgspec.DecodeError) -> ErrorKind:
    """Map a msgspec error to the OCPP-J error kind for it."""
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        return ErrorKind.FORMAT
    text = str(exc)
    if "missing required field" in text:
        return ErrorKind.OCCURRENCE_CONSTRAINT
    if "unknown field" in text:
        return ErrorKind.FORMAT
    if text.startswith("Expected `array` of length"):
        return ErrorKind.OCCURRENCE_CONSTRAINT
    if text.startswith("Invalid enum value") or " of length " in text or _BOUND.search(text):
        return ErrorKind.PROPERTY_CONSTRAINT
    if text.startswith("Invalid RFC3339"):
        return ErrorKind.TYPE_CONSTRAINT
    if text.startswith("Expected `"):
        return ErrorKind.TYPE_CONSTRAINT
    return ErrorKind.FORMAT


_BOUND = re.compile(r"^Expected `(?:int|float)` (?:>=|<=|>|<|that is a multiple of)")


def decode_strict(raw: bytes | str, type_: type[T]) -> T:
    """Decode JSON text to ``type_`` or raise :class:`OcppError` with the right kind."""
    try:
        return msgspec.json.decode(raw, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise OcppError(classify(exc), str(exc)) from exc


def decode_lenient(
    raw: bytes | str, type_: type[T], allowed: frozenset[Deviation]
) -> tuple[T, list[Repair]]:
    """Decode ``raw``, repairing the deviations in ``allowed``; return the message and repairs.

    Strict decoding is tried first, so a conforming payload costs no more than in strict mode.
    """
    try:
        return msgspec.json.decode(raw, type=type_), []
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        if not allowed or (
            isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError)
        ):
            raise OcppError(classify(exc), str(exc)) from exc
        first = exc
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:  # pragma: no cover - strict decode would have said so
        raise OcppError(ErrorKind.FORMAT, str(exc)) from exc
    repairs: list[Repair] = []
    fixed = _repair(data, _info(cast(Hashable, type_)), "$", allowed, repairs)
    try:
        return msgspec.convert(fixed, type_, strict=True), repairs
    except msgspec.ValidationError as exc:
        raise OcppError(classify(exc), str(exc)) from first


@lru_cache(maxsize=1024)
def _info(type_: Hashable) -> mi.Type:
    return mi.type_info(type_)


def _repair(
    value: Any, info: mi.Type, path: str, allowed: frozenset[Deviation], out: list[Repair]
) -> Any:
    for fixer in _FIXERS:
        value = fixer(value, info, path, allowed, out)
    return value


def _fix_struct(
    value: Any, info: mi.Type, path: str, allowed: frozenset[Deviation], out: list[Repair]
) -> Any:
    if not isinstance(info, mi.StructType) or not isinstance(value, dict):
        return value
    fields = {f.encode_name: f for f in info.fields}
    result: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            if Deviation.EXTRA_FIELDS in allowed:
                out.append(Repair(Deviation.EXTRA_FIELDS, f"{path}.{key}", _short(item)))
                continue
            result[key] = item
            continue
        result[key] = _repair(item, field.type, f"{path}.{key}", allowed, out)
    return result


def _fix_containers(
    value: Any, info: mi.Type, path: str, allowed: frozenset[Deviation], out: list[Repair]
) -> Any:
    if isinstance(info, mi.ListType) and isinstance(value, list):
        return [
            _repair(v, info.item_type, f"{path}[{i}]", allowed, out) for i, v in enumerate(value)
        ]
    if isinstance(info, mi.UnionType) and value is not None:
        for member in info.types:
            if not isinstance(member, mi.NoneType):
                return _repair(value, member, path, allowed, out)
    return value


def _fix_enum_case(
    value: Any, info: mi.Type, path: str, allowed: frozenset[Deviation], out: list[Repair]
) -> Any:
    if Deviation.ENUM_CASE not in allowed or not isinstance(info, mi.LiteralType):
        return value
    if not isinstance(value, str) or value in info.values:
        return value
    by_fold = {str(v).casefold(): v for v in info.values}
    match = by_fold.get(value.casefold())
    if match is None:
        return value
    out.append(Repair(Deviation.ENUM_CASE, path, value))
    return match


def _fix_numbers(
    value: Any, info: mi.Type, path: str, allowed: frozenset[Deviation], out: list[Repair]
) -> Any:
    if isinstance(info, mi.IntType | mi.FloatType) and isinstance(value, str):
        if Deviation.NUMBERS_AS_STRINGS not in allowed:
            return value
        try:
            number: int | float = int(value) if isinstance(info, mi.IntType) else float(value)
        except ValueError:
            return value
        out.append(Repair(Deviation.NUMBERS_AS_STRINGS, path, value))
        return number
    if (
        isinstance(info, mi.StrType)
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and Deviation.STRINGS_AS_NUMBERS in allowed
    ):
        out.append(Repair(Deviation.STRINGS_AS_NUMBERS, path, repr(value)))
        return repr(value) if isinstance(value, float) else str(value)
    return value


_Fixer = Callable[[Any, mi.Type, str, frozenset[Deviation], list[Repair]], Any]
_FIXERS: tuple[_Fixer, ...] = (_fix_struct, _fix_containers, _fix_enum_case, _fix_numbers)


def _short(value: Any) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def require_non_negative(**ids: int | None) -> None:
    """Connector and EVSE ids are >= 0 (OCPP 1.6 section 7, OCPP 2.0.1 Part 2 2.23), a rule the
    OCA JSON schemas do not carry; raise PropertyConstraintViolation otherwise."""
    for name, value in ids.items():
        if value is not None and value < 0:
            raise OcppError(ErrorKind.PROPERTY_CONSTRAINT, f"{name} must be >= 0, got {value}")
