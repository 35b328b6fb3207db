"""Cursor pagination, sorting and filtering of lists, the same for every list.

``?limit=`` (1-500, default 50), ``?sort=field`` or ``?sort=-field`` (descending), and
``?cursor=`` from the previous page's ``next_cursor``. A cursor is opaque (URL-safe base64 of
the sort and the last record's position) and only valid with the sort it was made for; one that
was not made by the API (its position is not of the types the sort and the key have) gets 400.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.exceptions import ValidationException

from chargegrid.service.ports import Filter, ListQuery

T = TypeVar("T")

MAX_LIMIT = 500

# What a position in a cursor may hold, by the type of its field: what the store can compare
# with that column on both databases (text without NUL, 32-bit integers, times with an offset).
_POSITION: dict[type, Any] = {
    str: Annotated[str, msgspec.Meta(pattern=r"^[^\x00]*$")],
    int: Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)],
    datetime: Annotated[datetime, msgspec.Meta(tz=True)],
}


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def query(
    *,
    sort: str,
    allowed: Mapping[str, type],
    limit: int,
    cursor: str | None,
    filters: Sequence[Filter] = (),
    key: type = str,
) -> ListQuery:
    """A store query from the request's paging parameters; 400 on a bad sort or cursor.

    ``allowed`` maps the fields one may sort by to their types (str, int or datetime), and
    ``key`` is the type of the records' key, which orders records of the same sort value.
    """
    descending = sort.startswith("-")
    field = sort.lstrip("-")
    if field not in allowed:
        raise ValidationException(f"cannot sort by {field!r}; choose from {', '.join(allowed)}")
    after = None
    if cursor:
        after = _decode_cursor(cursor, sort, allowed[field], key)
    return ListQuery(
        sort=field, descending=descending, limit=limit, filters=tuple(filters), after=after
    )


def page(
    items: Sequence[Any],
    more: bool,
    q: ListQuery,
    key: Callable[[Any], Any],
    render: Callable[[Any], T],
) -> Page[T]:
    """The response: the rendered items and the cursor of the next page, if there is one."""
    next_cursor = None
    if more and items:
        last = items[-1]
        sort = ("-" if q.descending else "") + q.sort
        next_cursor = _encode_cursor(sort, getattr(last, q.sort), key(last))
    return Page([render(i) for i in items], next_cursor)


def _encode_cursor(sort: str, value: Any, key: Any) -> str:
    raw = msgspec.json.encode([sort, value, key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, value_type: type, key_type: type) -> tuple[Any, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, value, key = msgspec.json.decode(raw, type=tuple[str, Any, Any])
        if made_for != sort:
            raise ValueError("made for another sort")
        value = msgspec.convert(value, _POSITION[value_type])
        key = msgspec.convert(key, _POSITION[key_type])
        for time in (value, key):
            if isinstance(time, datetime):
                time.astimezone(UTC)  # OverflowError when it has no UTC equivalent
        return value, key
    except (ValueError, OverflowError, msgspec.DecodeError) as exc:
        raise ValidationException(f"invalid cursor: {exc}") from exc
