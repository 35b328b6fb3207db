"""Webhooks: register URLs that receive the domain events, signed, and read their delivery log.

Managing webhooks needs the admin role (they carry a secret and send data out of the system);
the delivery log needs an operator. The secret is in the response of ``POST /webhooks`` and of
``POST /webhooks/{id}/rotate-secret`` only. What the receiver gets, and how it checks the
signature, is in :mod:`chargegrid.service.webhooks` and the README.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import delete, get, patch, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from chargegrid.domain.events import EVENT_TYPES
from chargegrid.domain.webhooks import (
    MIN_SECRET,
    Delivery,
    InvalidWebhook,
    NotFound,
    NotRetryable,
    Webhook,
)
from chargegrid.entrypoints.api import paging
from chargegrid.entrypoints.api.auth import ADMIN, OPERATOR
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import NO_NUL, ApiError, RecordId, StationId
from chargegrid.service.ports import Filter
from chargegrid.service.webhooks import WebhookDispatcher

Limit = Annotated[int, QueryParameter(ge=1, le=paging.MAX_LIMIT)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=NO_NUL)]
# Item bounds would not reach the document (Litestar leaves an array's item constraints out), so
# a schema-valid name could be refused with 400: names are checked by the domain instead (422).
Events = Annotated[list[str], msgspec.Meta(max_length=len(EVENT_TYPES) + 1)]
Description = Annotated[str, msgspec.Meta(max_length=500, pattern=NO_NUL)]
Secret = Annotated[str, msgspec.Meta(min_length=MIN_SECRET, max_length=200, pattern=NO_NUL)]
DeliveryStatus = Literal["pending", "delivered", "failed"]
EVENTS_HELP = f"Event types ({', '.join(EVENT_TYPES)}); empty or * for all"


class WebhookIn(msgspec.Struct):
    url: Url
    events: Events = []
    station_id: StationId | None = None
    description: Description | None = None
    enabled: bool = True
    secret: Secret | None = None  # generated when not given


class WebhookPatch(msgspec.Struct):
    """Change what is given (the secret: ``rotate-secret``)."""

    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: Events | msgspec.UnsetType = msgspec.UNSET
    station_id: StationId | msgspec.UnsetType | None = msgspec.UNSET
    description: Description | msgspec.UnsetType | None = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class SecretIn(msgspec.Struct):
    secret: Secret | None = None  # generated when not given


class WebhookOut(msgspec.Struct):
    id: int
    url: str
    events: list[str]
    station_id: str | None
    description: str | None
    enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookOut:
        return cls(
            webhook.id,
            webhook.url,
            list(webhook.events),
            webhook.station_id,
            webhook.description,
            webhook.enabled,
            webhook.created_at,
        )


class WebhookCreated(msgspec.Struct):
    """The secret is shown here once and never again."""

    secret: str
    webhook: WebhookOut


class DeliveryOut(msgspec.Struct):
    id: str
    webhook_id: int
    seq: int
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: str  # the request body sent

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            d.id,
            d.webhook_id,
            d.seq,
            d.event_type,
            d.status,
            d.attempts,
            d.next_attempt_at,
            d.last_status_code,
            d.last_error,
            d.created_at,
            d.delivered_at,
            d.payload,
        )


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(ApiError, description=description, generate_examples=False)


INVALID = {422: _error("The URL is not http(s) with a host, or an event type is unknown")}


def _hooks(ctx: Ctx) -> WebhookDispatcher:
    if ctx.webhooks is None:
        raise NotFoundException("webhooks are not enabled on this node")
    return ctx.webhooks


def _webhook(ctx: Ctx, webhook_id: int) -> Webhook:
    try:
        return _hooks(ctx).get(webhook_id)
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc


@get("/", summary="List webhooks", opt=ADMIN)
async def list_webhooks(
    ctx: Ctx, limit: Limit = 50, cursor: Annotated[str | None, QueryParameter()] = None
) -> paging.Page[WebhookOut]:
    q = paging.query(sort="id", allowed={"id": int}, limit=limit, cursor=cursor, key=int)
    found = _hooks(ctx).webhooks()
    if q.after is not None:
        found = [w for w in found if w.id > q.after[1]]
    return paging.page(found[:limit], len(found) > limit, q, lambda w: w.id, WebhookOut.of)


@post(
    "/",
    summary="Register a webhook",
    description=EVENTS_HELP + ". The secret (given, or generated) is in the answer only.",
    opt=ADMIN,
    status_code=HTTP_201_CREATED,
    responses=INVALID,
)
async def create_webhook(ctx: Ctx, data: JSONBody[WebhookIn]) -> WebhookCreated:
    try:
        webhook = await _hooks(ctx).create(
            data.url,
            events=data.events,
            station_id=data.station_id,
            description=data.description,
            enabled=data.enabled,
            secret=data.secret,
        )
    except InvalidWebhook as exc:
        raise ClientException(str(exc), status_code=422) from exc
    return WebhookCreated(webhook.secret, WebhookOut.of(webhook))


@get("/{webhook_id:int}", summary="A webhook", opt=ADMIN)
async def get_webhook(ctx: Ctx, webhook_id: RecordId) -> WebhookOut:
    return WebhookOut.of(_webhook(ctx, webhook_id))


@patch("/{webhook_id:int}", summary="Change a webhook", opt=ADMIN, responses=INVALID)
async def update_webhook(
    ctx: Ctx, webhook_id: RecordId, data: JSONBody[WebhookPatch]
) -> WebhookOut:
    _webhook(ctx, webhook_id)
    changes = {
        name: getattr(data, name)
        for name in data.__struct_fields__
        if getattr(data, name) is not msgspec.UNSET
    }
    try:
        return WebhookOut.of(await _hooks(ctx).update(webhook_id, **changes))
    except InvalidWebhook as exc:
        raise ClientException(str(exc), status_code=422) from exc
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc


@delete(
    "/{webhook_id:int}",
    summary="Delete a webhook and its delivery log",
    opt=ADMIN,
    status_code=HTTP_204_NO_CONTENT,
)
async def delete_webhook(ctx: Ctx, webhook_id: RecordId) -> None:
    _webhook(ctx, webhook_id)
    try:
        await _hooks(ctx).delete(webhook_id)
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc


@post(
    "/{webhook_id:int}/rotate-secret",
    summary="Give a webhook a new secret",
    description="The new secret (given, or generated) is in the answer only; it signs at once.",
    opt=ADMIN,
    status_code=200,
)
async def rotate_secret(
    ctx: Ctx, webhook_id: RecordId, data: JSONBody[SecretIn | None] = None
) -> WebhookCreated:
    _webhook(ctx, webhook_id)
    try:
        webhook = await _hooks(ctx).rotate_secret(webhook_id, data.secret if data else None)
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc
    return WebhookCreated(webhook.secret, WebhookOut.of(webhook))


@post(
    "/{webhook_id:int}/ping",
    summary="Send a test delivery now",
    description="A `ping` delivery, sent once (not retried); the answer says how it went.",
    opt=ADMIN,
    status_code=200,
)
async def ping_webhook(ctx: Ctx, webhook_id: RecordId) -> DeliveryOut:
    _webhook(ctx, webhook_id)
    try:
        return DeliveryOut.of(await _hooks(ctx).ping(webhook_id))
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc


@get(
    "/{webhook_id:int}/deliveries",
    summary="A webhook's delivery log",
    description="Newest first (`sort=created_at` for oldest first); `status` filters.",
    opt=OPERATOR,
)
async def list_deliveries(
    ctx: Ctx,
    webhook_id: RecordId,
    limit: Limit = 50,
    cursor: Annotated[str | None, QueryParameter()] = None,
    sort: Annotated[
        Literal["-created_at", "created_at"],
        QueryParameter(description="-created_at or created_at"),
    ] = "-created_at",
    status: Annotated[DeliveryStatus | None, QueryParameter()] = None,
) -> paging.Page[DeliveryOut]:
    filters = [Filter("status", "eq", status)] if status is not None else []
    q = paging.query(
        sort=sort, allowed={"created_at": datetime}, limit=limit, cursor=cursor, filters=filters
    )
    try:
        found, more = await _hooks(ctx).deliveries(webhook_id, q)
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc
    return paging.page(found, more, q, lambda d: d.id, DeliveryOut.of)


@post(
    "/{webhook_id:int}/deliveries/{delivery_id:str}/retry",
    summary="Queue a failed delivery again",
    description="It gets a new round of attempts, with the same id and body.",
    opt=OPERATOR,
    status_code=200,
    responses={409: _error("The delivery has not failed (it is pending or delivered)")},
)
async def retry_delivery(ctx: Ctx, webhook_id: RecordId, delivery_id: FromPath[str]) -> DeliveryOut:
    try:
        return DeliveryOut.of(await _hooks(ctx).retry(webhook_id, delivery_id))
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except NotRetryable as exc:
        raise ClientException(str(exc), status_code=409) from exc


handlers = [
    list_webhooks,
    create_webhook,
    get_webhook,
    update_webhook,
    delete_webhook,
    rotate_secret,
    ping_webhook,
    list_deliveries,
    retry_delivery,
]
