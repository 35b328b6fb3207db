"""Id tokens (RFID cards, app users, eMAIDs...): create, update, block, delete, list, and bulk
import from CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, JSONBody, QueryParameter, RawBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from chargegrid.domain.autocharge import MacAddressError, canonical
from chargegrid.domain.model import IdToken, TokenKind
from chargegrid.entrypoints.api import paging
from chargegrid.entrypoints.api.auth import OPERATOR
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import ImportResult, TokenIn, TokenOut, TokenPatch
from chargegrid.service.ports import Filter, Store

Limit = Annotated[int, QueryParameter(ge=1, le=paging.MAX_LIMIT)]
CSV_COLUMNS = ("value", "kind", "group", "expires_at", "blocked", "allow_concurrent", "owner")
MAX_IMPORT_ROWS = 100_000
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


@dataclass
class _CsvBody(Operation):
    """The import reads the raw body (Litestar's ``data`` is JSON): document it as CSV."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={"text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
            required=True,
        )


async def _token(ctx: Ctx, value: FromPath[str]) -> IdToken:
    token = await ctx.store.get_token(value)
    if token is None:
        raise NotFoundException(f"no id token {value!r}")
    return token


@get("/", summary="List id tokens")
async def list_tokens(
    ctx: Ctx,
    limit: Limit = 50,
    cursor: Annotated[str | None, QueryParameter()] = None,
    sort: Annotated[
        Literal["value", "-value"], QueryParameter(description="value or -value")
    ] = "value",
    kind: Annotated[str | None, QueryParameter()] = None,
    group: Annotated[str | None, QueryParameter()] = None,
    blocked: Annotated[bool | None, QueryParameter()] = None,
    owner: Annotated[str | None, QueryParameter()] = None,
) -> paging.Page[TokenOut]:
    filters = [
        Filter(name, "eq", value)
        for name, value in (
            ("kind", kind),
            ("group", group),
            ("blocked", blocked),
            ("owner", owner),
        )
        if value is not None
    ]
    q = paging.query(sort=sort, allowed={"value": str}, limit=limit, cursor=cursor, filters=filters)
    found, more = await ctx.store.page_tokens(q)
    return paging.page(found, more, q, lambda t: t.value, TokenOut.of)


async def _times_as_text(request: Request[Any, Any, Any]) -> None:
    """400 for an ``expires_at`` that is not RFC 3339 text: Litestar's lenient conversion would
    read a number as seconds since 1970, which the document does not allow."""
    body = msgspec.json.decode(await request.body())
    expires = body.get("expires_at") if isinstance(body, dict) else None
    if expires is not None and not isinstance(expires, str):
        raise ValidationException("expires_at: expected an RFC 3339 date-time text")


@post("/", summary="Create an id token", opt=OPERATOR, status_code=HTTP_201_CREATED)
async def create_token(
    ctx: Ctx, data: JSONBody[TokenIn], request: Request[Any, Any, Any]
) -> TokenOut:
    await _times_as_text(request)
    try:
        token = data.to_domain()
    except MacAddressError as exc:
        raise ClientException(str(exc), status_code=422) from exc
    if await ctx.store.get_token(token.value) is not None:
        raise ClientException(f"id token {token.value!r} exists", status_code=409)
    await ctx.store.save_token(token)
    return TokenOut.of(token)


@get("/{value:str}", summary="An id token")
async def get_token(ctx: Ctx, value: FromPath[str]) -> TokenOut:
    return TokenOut.of(await _token(ctx, value))


@patch("/{value:str}", summary="Change an id token", opt=OPERATOR)
async def update_token(
    ctx: Ctx, value: FromPath[str], data: JSONBody[TokenPatch], request: Request[Any, Any, Any]
) -> TokenOut:
    await _times_as_text(request)
    token = await _token(ctx, value)
    changes = {
        name: getattr(data, name)
        for name in data.__struct_fields__
        if getattr(data, name) is not msgspec.UNSET
    }
    if "kind" in changes:
        changes["kind"] = type(token.kind)(changes["kind"])
        if changes["kind"] is TokenKind.MAC_ADDRESS and token.value != canonical(token.value, True):
            raise ClientException(
                f"{token.value!r} is not a vehicle MAC in VID: form; create a MacAddress token",
                status_code=422,
            )
    updated = msgspec.structs.replace(token, **changes)
    await ctx.store.save_token(updated)
    return TokenOut.of(updated)


@post("/{value:str}/block", summary="Block an id token", opt=OPERATOR, status_code=200)
async def block_token(ctx: Ctx, value: FromPath[str]) -> TokenOut:
    blocked = msgspec.structs.replace(await _token(ctx, value), blocked=True)
    await ctx.store.save_token(blocked)
    return TokenOut.of(blocked)


@post("/{value:str}/unblock", summary="Unblock an id token", opt=OPERATOR, status_code=200)
async def unblock_token(ctx: Ctx, value: FromPath[str]) -> TokenOut:
    unblocked = msgspec.structs.replace(await _token(ctx, value), blocked=False)
    await ctx.store.save_token(unblocked)
    return TokenOut.of(unblocked)


@delete("/{value:str}", summary="Delete an id token", opt=OPERATOR, status_code=HTTP_204_NO_CONTENT)
async def delete_token(ctx: Ctx, value: FromPath[str]) -> None:
    if not await ctx.store.delete_token(value):
        raise NotFoundException(f"no id token {value!r}")


@post(
    "/import",
    summary="Create or update id tokens from CSV",
    description=(
        "A header row naming some of the columns "
        + ", ".join(CSV_COLUMNS)
        + " (value is required), then one token per row. An existing token keeps what the "
        "columns not named say of it; a named column's empty cell clears it (or sets its default). "
        "All rows are checked before any is stored: one bad row refuses the import with 422 and "
        "every error found."
    ),
    opt=OPERATOR,
    status_code=200,
    operation_class=_CsvBody,
)
async def import_tokens(
    ctx: Ctx,
    body: RawBody,
) -> ImportResult:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClientException("the CSV must be UTF-8", status_code=422) from exc
    try:
        tokens, errors = parse_csv(text)
    except csv.Error as exc:  # e.g. a lone carriage return in an unquoted cell: not a 500
        raise ClientException(f"the CSV cannot be read: {exc}", status_code=422) from exc
    if errors:
        raise ClientException(
            "the CSV has errors; nothing was imported",
            status_code=422,
            extra={"errors": errors[:100]},
        )
    return await store_imported(ctx.store, tokens, text)


async def store_imported(store: Store, tokens: list[IdToken], text: str) -> ImportResult:
    """Store what :func:`parse_csv` read from ``text``: new tokens whole; for an existing one,
    only the columns the header names (a file of ``value,owner`` must not unblock a card)."""
    named = set(next(csv.reader(io.StringIO(text)), ()))
    created = updated = 0
    for token in tokens:
        existing = await store.get_token(token.value)
        if existing is None:
            created += 1
            await store.save_token(token)
        else:
            updated += 1
            changes = {name: getattr(token, name) for name in CSV_COLUMNS if name in named}
            await store.save_token(msgspec.structs.replace(existing, **changes))
    return ImportResult(created, updated)


def parse_csv(text: str) -> tuple[list[IdToken], list[str]]:
    """Tokens from CSV text, or the errors found (row numbers count the header as row 1)."""
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    errors: list[str] = []
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if "value" not in columns:
        return [], ["the header must name a value column"]
    if unknown:
        return [], [f"unknown columns: {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}"]
    tokens: dict[str, IdToken] = {}
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_IMPORT_ROWS:
            errors.append(f"more than {MAX_IMPORT_ROWS} rows")
            break
        if None in row:  # DictReader's key for cells beyond the header: columns are misaligned
            errors.append(f"row {number}: more cells than the header has columns")
            continue
        fields: dict[str, object] = {k: v for k, v in row.items() if k and v not in (None, "")}
        bad_flags = False
        for flag in ("blocked", "allow_concurrent"):
            if flag in fields:
                text_value = str(fields[flag]).strip().lower()
                if text_value not in ("true", "false", "1", "0", "yes", "no"):
                    errors.append(f"row {number}: {flag} must be true or false")
                    bad_flags = True
                    continue
                fields[flag] = text_value in ("true", "1", "yes")
        if bad_flags:
            continue  # the row is refused; converting it would report the same error again
        if "expires_at" in fields:
            try:
                fields["expires_at"] = msgspec.convert(fields["expires_at"], AwareDatetime)
            except msgspec.ValidationError:
                errors.append(f"row {number}: expires_at must be an RFC 3339 time with an offset")
                continue
        try:
            token = msgspec.convert(fields, TokenIn).to_domain()
        except (msgspec.ValidationError, MacAddressError) as exc:
            errors.append(f"row {number}: {exc}")
            continue
        tokens[token.value] = token  # a value given twice: the last row counts
    return list(tokens.values()), errors


handlers = [
    list_tokens,
    create_token,
    import_tokens,
    get_token,
    update_token,
    block_token,
    unblock_token,
    delete_token,
]
