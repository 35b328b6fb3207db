"""Webhooks and their deliveries: what they are, when one matches an event, when a failed
delivery is tried again, and how a request is signed (see :mod:`chargegrid.service.webhooks`
for the sending).

Errors: :class:`WebhookError` is the root; :class:`InvalidWebhook` (HTTP 422) for a webhook
the rules refuse, :class:`NotFound` (404), :class:`NotRetryable` (409).
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from chargegrid.domain.events import EVENT_TYPES

Status = Literal["pending", "delivered", "failed"]
MIN_SECRET = 16


class WebhookError(Exception):
    """Root of the webhook errors."""


class InvalidWebhook(WebhookError):
    """The webhook breaks a rule (a URL that is not http(s), an unknown event type); HTTP 422."""


class NotFound(WebhookError):
    """No such webhook or delivery; HTTP 404."""


class NotRetryable(WebhookError):
    """Only a failed delivery can be queued again; HTTP 409."""


class Webhook(msgspec.Struct, kw_only=True):
    id: int  # 0 until stored
    url: str
    secret: str
    events: list[str]  # empty: every type
    station_id: str | None = None
    description: str | None = None
    enabled: bool = True
    created_at: datetime

    def __repr__(self) -> str:
        return f"Webhook(id={self.id}, url={self.url!r}, secret=<hidden>)"

    def __rich_repr__(self) -> list[tuple[str, Any]]:  # rich tracebacks show locals with it
        return [
            (name, "<hidden>" if name == "secret" else getattr(self, name))
            for name in self.__struct_fields__
        ]

    def matches(self, event_type: str, station_id: str) -> bool:
        return (
            self.enabled
            and (not self.events or "*" in self.events or event_type in self.events)
            and (self.station_id is None or self.station_id == station_id)
        )


class Delivery(msgspec.Struct, kw_only=True):
    id: str
    webhook_id: int
    seq: int
    event_type: str
    payload: str  # the request body, the same on every attempt
    status: Status = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None

    def order(self) -> tuple[datetime, datetime, int, str]:
        due = self.next_attempt_at or self.created_at
        return (due, self.created_at, self.seq, self.id)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: ``base_s`` times 1, 3, 12, 60, 360, 2160 (10 s to 6 h by default),
    at most ``cap_s``, each moved by up to ``jitter`` of itself so that the retries of many
    deliveries spread out."""

    base_s: float = 10.0
    cap_s: float = 6 * 3600.0
    max_attempts: int = 8
    jitter: float = 0.2

    STEPS = (1, 3, 12, 60, 360, 2160)

    def delay(self, attempts: int, rand: random.Random) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (from 1)."""
        step = self.STEPS[min(attempts, len(self.STEPS)) - 1]
        spread = 1 + self.jitter * (2 * rand.random() - 1)
        return min(self.cap_s, self.base_s * step * spread)


def check_events(events: Sequence[str]) -> None:
    unknown = sorted(set(events) - {*EVENT_TYPES, "*"})
    if unknown:
        raise InvalidWebhook(
            f"unknown event types {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)} or *"
        )


def check_secret(secret: str) -> None:
    if len(secret) < MIN_SECRET:
        raise InvalidWebhook(f"the secret must have at least {MIN_SECRET} characters")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``, keyed with ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
