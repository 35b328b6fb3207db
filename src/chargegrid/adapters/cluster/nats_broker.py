"""The cluster's :class:`~chargegrid.service.cluster.ports.Broker` on core NATS (nats-py).

Core NATS only (no JetStream): what must survive a node is in PostgreSQL, and what goes over
NATS (calls, events for the live streams, directory updates) is worthless once late. nats-py's
exceptions are translated here into the port's errors. The client reconnects by itself, forever;
while it is cut off, publishes are buffered by it and requests fail.

The server URLs may carry ``user:password@``: it is blanked in every message and log line this
module writes (:func:`scrub`). TLS (a CA, and a client certificate for mutual TLS) and NATS
credentials (a ``.creds`` file, or an nkey seed file) are handed to nats-py as given; with TLS
set, a server that does not require TLS is refused (nats-py would speak to it in clear).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from nats import errors as nats_errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from chargegrid.service.cluster.ports import (
    BrokerError,
    Handler,
    NoRespondersError,
    RequestTimeoutError,
)

log = structlog.get_logger(__name__)

_DRAIN_TIMEOUT_S = 2
_FIRST_CONNECT_S = 10.0
_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


@dataclass(frozen=True)
class Security:
    """TLS to the NATS server(s) and this node's NATS credentials (paths; "" for none)."""

    tls_ca: str = ""  # PEM CAs of the servers' certificates
    tls_cert: str = ""  # PEM client certificate (mutual TLS), with tls_key
    tls_key: str = ""
    creds: str = ""  # a .creds file (JWT and nkey seed), or an nkey seed file

    def tls(self, servers: list[str]) -> ssl.SSLContext | None:
        """The TLS context, when TLS is asked for (a file given, or a tls:// URL)."""
        wanted = self.tls_ca or self.tls_cert or any(s.startswith("tls://") for s in servers)
        if not wanted:
            return None
        context = ssl.create_default_context(cafile=self.tls_ca or None)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key or None)
        return context

    def credentials(self) -> tuple[str | None, str | None]:
        """nats-py's ``user_credentials`` (a .creds file) and ``nkeys_seed`` (a seed file)."""
        if not self.creds:
            return None, None
        if "-----BEGIN NATS USER JWT-----" in Path(self.creds).read_text():
            return self.creds, None
        return None, self.creds


def scrub(text: str, servers: str = "") -> str:
    """``text`` with the ``user:password@`` of URLs, and the passwords of ``servers``, blanked."""
    text = _USERINFO.sub(r"\1***@", text)
    for match in _USERINFO.finditer(servers):
        userinfo = servers[match.end(1) : match.end() - 1]
        _, _, password = userinfo.partition(":")
        for secret in (userinfo, password):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
    return text


async def connect(
    servers: str,
    name: str,
    security: Security | None = None,
    *,
    first_timeout_s: float = _FIRST_CONNECT_S,
) -> NatsBroker:
    """Connect to the NATS server(s) at ``servers`` (comma-separated ``nats://`` URLs), within
    ``first_timeout_s``; afterwards the client reconnects by itself, forever."""
    security = security or Security()
    urls = [s.strip() for s in servers.split(",") if s.strip()]
    shown = scrub(", ".join(urls), servers)

    async def on_error(exc: Exception) -> None:
        log.warning("NATS error", error=scrub(str(exc), servers))

    try:
        tls = security.tls(urls)
        user_credentials, nkeys_seed = security.credentials()
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise BrokerError(f"cannot use the NATS TLS or credentials files: {exc}") from exc
    broker = NatsBroker(Client(), tls=tls is not None)

    async def on_disconnect() -> None:
        if not broker.closing:
            log.warning("NATS connection lost; reconnecting")

    async def on_reconnect() -> None:
        log.info("NATS connection back")

    try:
        # nats-py retries its first connection as often as later ones (forever): bounded here
        async with asyncio.timeout(first_timeout_s):
            await broker.client.connect(
                servers=urls,
                name=name,
                connect_timeout=5,
                max_reconnect_attempts=-1,
                reconnect_time_wait=1,
                allow_reconnect=True,
                drain_timeout=_DRAIN_TIMEOUT_S,
                error_cb=on_error,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                tls=tls,
                user_credentials=user_credentials,
                nkeys_seed=nkeys_seed,
            )
    except (OSError, TimeoutError, nats_errors.Error) as exc:
        await _close_quietly(broker.client)
        message = scrub(str(exc), servers) or f"no connection within {first_timeout_s:g} s"
        # from None: the cause's message may name a server URL with its password
        raise BrokerError(f"cannot reach the NATS server at {shown}: {message}") from None
    if tls is not None and not broker.secure:
        await _close_quietly(broker.client)
        raise BrokerError(
            f"the NATS server at {shown} does not require TLS, and TLS to it is set: "
            "configure TLS on the server (tls { ... })"
        )
    return broker


class NatsBroker:
    def __init__(self, client: Client, *, tls: bool = False) -> None:
        self.client = client
        self.tls = tls
        self.closing = False

    @property
    def secure(self) -> bool:
        """TLS was set, and the server connected to requires it (nats-py upgrades to TLS only
        then; its server INFO is private, hence the getattr)."""
        info = getattr(self.client, "_server_info", None) or {}
        return self.tls and bool(info.get("tls_required"))

    async def publish(self, subject: str, data: bytes) -> None:
        try:
            await self.client.publish(subject, data)
        except nats_errors.Error as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        try:
            msg = await self.client.request(subject, data, timeout=timeout)
        except nats_errors.NoRespondersError as exc:
            raise NoRespondersError(subject) from exc
        except nats_errors.TimeoutError as exc:
            raise RequestTimeoutError(f"no reply within {timeout:g} s") from exc
        except nats_errors.Error as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc
        return bytes(msg.data)

    async def subscribe(self, subject: str, handler: Handler) -> None:
        async def on_message(msg: Msg) -> None:
            reply: Callable[[bytes], Awaitable[None]] | None = None
            if msg.reply:
                reply = _replier(self.client, msg.reply)
            try:
                await handler(bytes(msg.data), reply)
            except Exception:  # one bad message does not end the subscription
                log.exception("cluster message handler failed", subject=subject)

        try:
            await self.client.subscribe(subject, cb=on_message, pending_msgs_limit=1_000_000)
        except nats_errors.Error as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        """Drain (at most a couple of seconds), or close at once when not connected: draining
        a connection that is down would wait for nats-py's drain timeout."""
        self.closing = True
        if not self.client.is_connected:
            await _close_quietly(self.client)
            return
        try:
            await self.client.drain()
        except Exception as exc:  # closing: whatever it says, the connection is gone
            log.debug("NATS drain", error=type(exc).__name__)
            await _close_quietly(self.client)


def _replier(client: Client, subject: str) -> Callable[[bytes], Awaitable[None]]:
    async def reply(data: bytes) -> None:
        try:
            await client.publish(subject, data)
        except nats_errors.Error as exc:
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    return reply


async def _close_quietly(client: Any) -> None:
    try:
        await client.close()
    except Exception as exc:
        log.debug("NATS close", error=type(exc).__name__)
