"""Transactions: list and filter, detail with meter values, CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import QueryParameter
from litestar.response import Stream

from chargegrid.entrypoints.api import paging
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import (
    MeterReadingOut,
    RecordId,
    TransactionDetail,
    TransactionOut,
    storable,
)
from chargegrid.service.ports import Filter, ListQuery, Store

Limit = Annotated[int, QueryParameter(ge=1, le=paging.MAX_LIMIT)]
SORTS = {"started_at": datetime, "id": int}
CSV_FIELDS = list(TransactionOut.__struct_fields__)


def filters_of(
    station_id: str | None,
    id_token: str | None,
    state: str | None,
    started_from: datetime | str | None,
    started_to: datetime | str | None,
) -> list[Filter]:
    filters = [
        Filter(name, "eq", value)
        for name, value in (("station_id", station_id), ("id_token", id_token), ("state", state))
        if value is not None
    ]
    if started_from is not None:
        filters.append(Filter("started_at", "ge", _aware("started_from", started_from)))
    if started_to is not None:
        filters.append(Filter("started_at", "lt", _aware("started_to", started_to)))
    return filters


def _aware(name: str, value: datetime | str) -> datetime:
    """The time, or the time an RFC 3339 parameter gives; 400 for other text (Litestar would
    also take a number, as Unix time), and for a time without an offset: which instant it means
    is anyone's guess."""
    if isinstance(value, str):
        try:
            value = msgspec.convert(value, datetime)  # strict: RFC 3339 text only
        except msgspec.ValidationError as exc:
            raise ValidationException(f"{name} is not an RFC 3339 time: {exc}") from exc
    if value.tzinfo is None:
        raise ValidationException(f"{name} needs a UTC offset (e.g. 2026-03-01T00:00:00Z)")
    return storable(value)  # year 1 at +01:00 has no UTC equivalent: the nearest that has


StateParam = Annotated[str | None, QueryParameter(name="state", description="Active or Ended")]
# Text, parsed by _aware (the document says date-time: app.py puts the format on the text option)
FromParam = Annotated[
    str | None, QueryParameter(format="date-time", description="started at or after (RFC 3339)")
]
ToParam = Annotated[
    str | None, QueryParameter(format="date-time", description="started before (RFC 3339)")
]


@get("/", summary="List transactions, newest first by default")
async def list_transactions(
    ctx: Ctx,
    limit: Limit = 50,
    cursor: Annotated[str | None, QueryParameter()] = None,
    sort: Annotated[
        Literal["started_at", "-started_at", "id", "-id"],
        QueryParameter(description="started_at, -started_at, id or -id"),
    ] = "-started_at",
    station_id: Annotated[str | None, QueryParameter()] = None,
    id_token: Annotated[str | None, QueryParameter()] = None,
    tx_state: StateParam = None,
    started_from: FromParam = None,
    started_to: ToParam = None,
) -> paging.Page[TransactionOut]:
    filters = filters_of(station_id, id_token, tx_state, started_from, started_to)
    q = paging.query(sort=sort, allowed=SORTS, limit=limit, cursor=cursor, filters=filters, key=int)
    found, more = await ctx.store.page_transactions(q)
    return paging.page(found, more, q, lambda t: t.id, TransactionOut.of)


@get(
    "/export.csv",
    summary="Transactions as CSV (same filters as the list), oldest first",
    media_type="text/csv",
)
async def export_transactions(
    ctx: Ctx,
    station_id: Annotated[str | None, QueryParameter()] = None,
    id_token: Annotated[str | None, QueryParameter()] = None,
    tx_state: StateParam = None,
    started_from: FromParam = None,
    started_to: ToParam = None,
) -> Stream:
    filters = tuple(filters_of(station_id, id_token, tx_state, started_from, started_to))

    async def chunks() -> AsyncIterator[str]:
        async for text, _ in csv_pages(ctx.store, filters):
            yield text

    return Stream(
        chunks(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="transactions.csv"'},
    )


async def csv_pages(store: Store, filters: tuple[Filter, ...]) -> AsyncIterator[tuple[str, int]]:
    """The export, oldest first, a page at a time: CSV text (the header first) and how many
    transactions it holds. The API streams it; ``chargegrid tx export`` writes it to a file."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    query = ListQuery(sort="started_at", limit=paging.MAX_LIMIT, filters=filters)
    while True:
        found, more = await store.page_transactions(query)
        for tx in found:
            row = TransactionOut.of(tx)
            writer.writerow([_csv_value(getattr(row, name)) for name in CSV_FIELDS])
        yield out.getvalue(), len(found)
        out.seek(0)
        out.truncate()
        if not more or not found:
            return
        last = found[-1]
        query = ListQuery(
            sort="started_at",
            limit=paging.MAX_LIMIT,
            filters=filters,
            after=(last.started_at, last.id),
        )


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


@get("/{transaction_id:int}", summary="A transaction with its meter values")
async def get_transaction(ctx: Ctx, transaction_id: RecordId) -> TransactionDetail:
    tx = await ctx.store.get_transaction(transaction_id)
    if tx is None:
        raise NotFoundException(f"no transaction {transaction_id}")
    readings = await ctx.store.meter_values(transaction_id)
    return TransactionDetail(TransactionOut.of(tx), [MeterReadingOut.of(r) for r in readings])


handlers = [list_transactions, export_transactions, get_transaction]
