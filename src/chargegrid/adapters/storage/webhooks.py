"""The :class:`~chargegrid.service.webhooks.WebhookStore` on SQLite or PostgreSQL (SQLAlchemy
async Core, every query parameterised).

Webhook traffic is small next to the stations', so it does not go through the group-commit
writer: it is a :class:`~.side.SideStore`, with engines of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, literal, select, tuple_, update
from sqlalchemy import exc as sa_exc

from chargegrid.adapters.storage import tables
from chargegrid.adapters.storage.errors import StorageError
from chargegrid.adapters.storage.side import SideStore, engines
from chargegrid.domain.webhooks import Delivery, Webhook
from chargegrid.service.ports import ListQuery

_W = tables.webhooks
_D = tables.webhook_deliveries
_DELIVERY_STATE = (
    "status",
    "attempts",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "delivered_at",
)


def open_webhook_store(url: str) -> SqlWebhookStore:
    """The store on the migrated database at ``url`` (it connects on first use). The webhooks'
    secrets are statement parameters, which :func:`.side.engines` keeps out of logs."""
    return SqlWebhookStore(*engines(url))


class SqlWebhookStore(SideStore):
    what = "webhook store"

    # --- webhooks -------------------------------------------------------------------------------

    async def add_webhook(self, webhook: Webhook) -> Webhook:
        values = _webhook_values(webhook)
        result = await self._write(insert(_W).values(values).returning(_W.c.id))
        webhook.id = int(result.scalar_one())
        return webhook

    async def save_webhook(self, webhook: Webhook) -> None:
        await self._write(update(_W).where(_W.c.id == webhook.id).values(_webhook_values(webhook)))

    async def list_webhooks(self) -> list[Webhook]:
        return [_to_webhook(row) for row in await self._read(select(_W).order_by(_W.c.id))]

    async def delete_webhook(self, webhook_id: int) -> bool:
        # Deliveries first: SQLite enforces the cascade only with its foreign_keys pragma.
        async def both() -> Any:
            async with self._writer.begin() as conn:
                await conn.execute(delete(_D).where(_D.c.webhook_id == webhook_id))
                return await conn.execute(delete(_W).where(_W.c.id == webhook_id))

        try:
            result = await self._whole(both())
        except sa_exc.SQLAlchemyError as exc:
            raise StorageError(f"webhook store write failed: {exc}") from exc
        return bool(result.rowcount)

    # --- deliveries -----------------------------------------------------------------------------

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            await self._write(insert(_D), [_delivery_values(d) for d in deliveries])

    async def save_delivery(self, delivery: Delivery) -> None:
        state = {name: getattr(delivery, name) for name in _DELIVERY_STATE}
        await self._write(update(_D).where(_D.c.id == delivery.id).values(state))

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        found = await self._read(select(_D).where(_D.c.id == delivery_id))
        return _to_delivery(found[0]) if found else None

    async def pending_deliveries(self, webhook_id: int, limit: int) -> list[Delivery]:
        statement = (
            select(_D)
            .where(_D.c.webhook_id == webhook_id, _D.c.status == "pending")
            .order_by(_D.c.next_attempt_at, _D.c.created_at, _D.c.seq, _D.c.id)
            .limit(limit)
        )
        return [_to_delivery(row) for row in await self._read(statement)]

    async def page_deliveries(
        self, webhook_id: int, query: ListQuery
    ) -> tuple[list[Delivery], bool]:
        """By ``created_at`` then ``id``; the one filter is ``status`` (eq)."""
        statement = select(_D).where(_D.c.webhook_id == webhook_id)
        for f in query.filters:
            if (f.field, f.op) != ("status", "eq"):
                raise ValueError(f"unknown filter {f.field} {f.op}")
            statement = statement.where(_D.c.status == f.value)
        if query.after is not None:
            value, last = query.after
            pair = tuple_(_D.c.created_at, _D.c.id)
            bound = tuple_(literal(value, _D.c.created_at.type), literal(last, _D.c.id.type))
            statement = statement.where(pair < bound if query.descending else pair > bound)
        order = (
            [_D.c.created_at.desc(), _D.c.id.desc()]
            if query.descending
            else [_D.c.created_at, _D.c.id]
        )
        found = await self._read(statement.order_by(*order).limit(query.limit + 1))
        return [_to_delivery(row) for row in found[: query.limit]], len(found) > query.limit

    async def purge_deliveries(self, before: Any) -> int:
        result = await self._write(
            delete(_D).where(_D.c.status.in_(("delivered", "failed")), _D.c.created_at < before)
        )
        return int(result.rowcount or 0)


def _webhook_values(webhook: Webhook) -> dict[str, Any]:
    return {
        "url": webhook.url,
        "secret": webhook.secret,
        "events": list(webhook.events),
        "station_id": webhook.station_id,
        "description": webhook.description,
        "enabled": webhook.enabled,
        "created_at": webhook.created_at,
    }


def _to_webhook(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        secret=row.secret,
        events=list(row.events),
        station_id=row.station_id,
        description=row.description,
        enabled=row.enabled,
        created_at=row.created_at,
    )


def _delivery_values(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "seq": delivery.seq,
        "event_type": delivery.event_type,
        "payload": delivery.payload,
        "created_at": delivery.created_at,
        **{name: getattr(delivery, name) for name in _DELIVERY_STATE},
    }


def _to_delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        seq=row.seq,
        event_type=row.event_type,
        payload=row.payload,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )
