"""Every message between nodes authenticated with the cluster's secret.

Anyone who can publish on the NATS server could otherwise command every station (a
:class:`~.wire.CallRequest` to a node), claim stations, close their connections or forge events.
:class:`AuthenticatedBroker` wraps the broker so that each message carries a tag made with the
secret every node is given (``CHARGEGRID_CLUSTER_SECRET``), and a message without a valid one is
dropped (and logged, without its content).

Rules:

* A sealed message is ``b"cg1" + timestamp + tag + body``: the timestamp is the sender's wall
  clock in milliseconds (8 bytes, big-endian), the tag the HMAC-SHA256, keyed with the secret,
  of the version, the subject, the timestamp and the body. The subject is in the tag, so a
  message cannot be moved to another subject (a reply's "subject" is the tag of its request,
  so a reply answers one request only).
* A message whose timestamp is more than :data:`MAX_AGE_S` from the receiver's clock is
  dropped: a replay is possible within that window only (the nodes' clocks must agree to within
  it: NTP). This makes messages unforgeable, not unreadable: that takes TLS to NATS.
* Nothing is encrypted here: see ``--cluster-tls-*``, and :mod:`.routing`, which sends no call
  that can carry a station secret over a broker connection that is not TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable

import structlog

from chargegrid.service.cluster.ports import Broker, BrokerError, Handler

log = structlog.get_logger(__name__)

MAX_AGE_S = 30.0
MIN_SECRET_LENGTH = 32
_VERSION = b"cg1"
_STAMP = 8
_TAG = 32
_HEAD = len(_VERSION) + _STAMP + _TAG
_LOG_EVERY_S = 10.0


class Sealer:
    """Seals and opens messages with the cluster's secret (pure: the clock is given)."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"the cluster secret must have at least {MIN_SECRET_LENGTH} chars")
        self._key = secret.encode()
        self.clock = clock

    def _tag(self, context: bytes, stamp: bytes, body: bytes) -> bytes:
        mac = hmac.new(self._key, _VERSION + len(context).to_bytes(4, "big"), hashlib.sha256)
        mac.update(context)
        mac.update(stamp)
        mac.update(body)
        return mac.digest()

    def seal(self, context: bytes, body: bytes) -> bytes:
        stamp = int(self.clock() * 1000).to_bytes(_STAMP, "big", signed=True)
        return _VERSION + stamp + self._tag(context, stamp, body) + body

    def open(self, context: bytes, data: bytes) -> bytes:
        """The body of a message sealed for ``context``; :class:`ValueError` saying why not."""
        if len(data) < _HEAD or not data.startswith(_VERSION):
            raise ValueError("not sealed")
        stamp = data[len(_VERSION) : len(_VERSION) + _STAMP]
        tag, body = data[len(_VERSION) + _STAMP : _HEAD], data[_HEAD:]
        if not hmac.compare_digest(tag, self._tag(context, stamp, body)):
            raise ValueError("bad tag")
        age = self.clock() - int.from_bytes(stamp, "big", signed=True) / 1000
        if abs(age) > MAX_AGE_S:
            raise ValueError(f"timestamp {age:+.0f} s off")
        return body

    @staticmethod
    def tag_of(sealed: bytes) -> bytes:
        return sealed[len(_VERSION) + _STAMP : _HEAD]


class AuthenticatedBroker:
    """A :class:`~.ports.Broker` whose messages are sealed with the cluster's secret."""

    def __init__(self, inner: Broker, sealer: Sealer) -> None:
        self.inner = inner
        self.sealer = sealer
        self._dropped: dict[str, tuple[float, int]] = {}  # subject -> (last logged, since)

    @property
    def secure(self) -> bool:
        return self.inner.secure

    async def publish(self, subject: str, data: bytes) -> None:
        await self.inner.publish(subject, self.sealer.seal(subject.encode(), data))

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        sealed = self.sealer.seal(subject.encode(), data)
        answer = await self.inner.request(subject, sealed, timeout)
        try:
            return self.sealer.open(b"reply:" + Sealer.tag_of(sealed), answer)
        except ValueError as exc:
            self._drop(subject + " (reply)", str(exc))
            raise BrokerError("the reply was not authenticated with the cluster secret") from exc

    async def subscribe(self, subject: str, handler: Handler) -> None:
        context = subject.encode()

        async def on_message(data: bytes, reply: Callable[[bytes], Awaitable[None]] | None) -> None:
            try:
                body = self.sealer.open(context, data)
            except ValueError as exc:
                self._drop(subject, str(exc))
                return
            sealed_reply = None
            if reply is not None:
                reply_context = b"reply:" + Sealer.tag_of(data)

                async def sealed_reply(answer: bytes) -> None:
                    await reply(self.sealer.seal(reply_context, answer))

            await handler(body, sealed_reply)

        await self.inner.subscribe(subject, on_message)

    async def close(self) -> None:
        await self.inner.close()

    def _drop(self, subject: str, why: str) -> None:
        """Log a dropped message (never its content), at most once per subject every 10 s."""
        now = time.monotonic()
        last, count = self._dropped.get(subject, (-1e9, 0))
        count += 1
        if now - last >= _LOG_EVERY_S:
            log.warning(
                "cluster message dropped: not authenticated with the cluster secret",
                subject=subject,
                reason=why,
                dropped=count,
            )
            self._dropped[subject] = (now, 0)
        else:
            self._dropped[subject] = (last, count)
