"""The least valid answer to any request, built from its generated message type.

A simulated station answers every CSMS-initiated operation of its version. The ones that change
what it does (remote start and stop, profiles, availability, reset, configuration...) have their
own handlers in :mod:`.v16` and :mod:`.v201`; the rest (firmware, logs, certificates, display
messages, monitoring, local lists...) get the answer built here: every required field filled with
the first value its schema allows, ``Accepted`` where the status allows it. The RPC session
checks the result against the schema before it is sent, like any other answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import msgspec
from msgspec import inspect

#: Status values preferred, in order, when a Literal allows several.
_PREFERRED = ("Accepted", "Unlocked", "Unpublished", "Idle", "Unknown")


@cache
def _info(struct: type[msgspec.Struct]) -> inspect.StructType:
    info = inspect.type_info(struct)
    assert isinstance(info, inspect.StructType)
    return info


def minimal(struct: type[msgspec.Struct], **given: Any) -> msgspec.Struct:
    """An instance of ``struct`` with ``given`` fields and every other required one filled."""
    values = dict(given)
    for f in _info(struct).fields:
        if f.required and f.name not in values:
            values[f.name] = _value(f.type)
    return struct(**values)


def _value(t: inspect.Type) -> Any:
    if isinstance(t, inspect.LiteralType):
        for preferred in _PREFERRED:
            if preferred in t.values:
                return preferred
        return t.values[0]
    if isinstance(t, inspect.StrType):
        return "x" * (t.min_length or 0)
    if isinstance(t, inspect.IntType):
        return t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else 0)
    if isinstance(t, inspect.FloatType):
        return float(t.ge) if t.ge is not None else 0.0
    if isinstance(t, inspect.BoolType):
        return False
    if isinstance(t, inspect.DateTimeType):
        return datetime.now(UTC)
    if isinstance(t, inspect.ListType):
        return [_value(t.item_type) for _ in range(t.min_length or 0)]
    if isinstance(t, inspect.StructType):
        return minimal(t.cls)
    if isinstance(t, inspect.UnionType):
        return _value(next(x for x in t.types if not isinstance(x, inspect.NoneType)))
    if isinstance(t, inspect.DictType):
        return {}
    raise TypeError(f"no minimal value for {t!r}")
