"""Commands to stations another node holds: NATS request/reply to that node.

:class:`ClusterLinks` is the :class:`~chargegrid.service.ocpp.context.StationLinks` of a node in
a cluster: a station connected here is called directly, one connected elsewhere through a
:class:`RemoteLink` that sends a :class:`~.wire.CallRequest` to the node holding it, which calls
the station and replies (:class:`CallServer`). What the station answers, and every way a call
fails, reach :class:`~chargegrid.service.commands.Commands` as if the station were here, so a
command sent through any node is validated, recorded and mapped to HTTP statuses the same way.

Failures of the route itself:

* no node holds the station, or the node the directory names is gone (NATS answers "no
  responders" at once): :class:`StationNotConnectedError`, so the command is *offline* (409);
* the holding node stops answering (it died mid-call): the call fails when the directory
  declares it gone (``dead_after_s``) or at the call's timeout plus :data:`GRACE_S`, whichever is
  first, as a timeout (504) whose message names the node and says that the command may or may
  not have reached the station;
* a call that can carry a station's secret (an action of
  :data:`chargegrid.domain.redaction.ACTIONS`: an AuthorizationKey, a BasicAuthPassword, URLs
  with credentials) is not sent over a broker connection that is not TLS: it fails at once as
  a security error (422), which says to use TLS to NATS or to send it through the node holding
  the station.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import structlog

from chargegrid.domain import redaction
from chargegrid.protocols.ocppj.dialect import Dialect
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.service.cluster import wire
from chargegrid.service.cluster.directory import Directory
from chargegrid.service.cluster.ports import (
    Broker,
    BrokerError,
    NoRespondersError,
    RequestTimeoutError,
)
from chargegrid.service.ocpp.context import (
    CallFailedError,
    StationLink,
    StationNotConnectedError,
)

log = structlog.get_logger(__name__)

GRACE_S = 2.0  # beyond the call's own timeout, for the holding node to reply that it timed out
_encode = msgspec.json.Encoder(decimal_format="number").encode
_reply = msgspec.json.Decoder(wire.CallReply)
_request = msgspec.json.Decoder(wire.CallRequest)


def call_subject(prefix: str, node: str) -> str:
    return f"{prefix}.node.{node}.call"


class LocalLinks(Protocol):
    """This node's WebSocket server, as far as routing needs it."""

    def get(self, station_id: str) -> StationLink | None: ...

    def connected(self, station_id: str) -> str | None: ...

    def disconnect(self, station_id: str, reason: str) -> bool: ...


class RemoteLink:
    """A station connected to another node."""

    def __init__(
        self,
        station_id: str,
        ocpp_version: str,
        node: str,
        routes: ClusterLinks,
    ) -> None:
        self.station_id = station_id
        self.ocpp_version = ocpp_version
        self.node = node
        self._routes = routes

    async def call(self, request: msgspec.Struct, timeout: float | None = None) -> msgspec.Struct:
        routes = self._routes
        dialect = routes.dialects[self.ocpp_version]
        action = dialect.action_of[type(request)]
        if action in redaction.ACTIONS and not routes.broker.secure:
            raise OcppError(
                ErrorKind.SECURITY,
                f"{action} can carry a station secret and is not sent over the cluster's NATS "
                f"connection, which is not TLS: use TLS to NATS (--cluster-tls-ca), or send it "
                f"through the node holding station {self.station_id} ({self.node})",
            )
        message = wire.CallRequest(
            self.station_id, self.ocpp_version, action, msgspec.Raw(_encode(request)), timeout
        )
        wait = (timeout if timeout is not None else routes.call_timeout_s) + GRACE_S
        data = await routes.request(self.node, _encode(message), wait, self.station_id)
        reply = _reply.decode(data)
        if reply.error is None:
            return msgspec.json.decode(reply.response, type=dialect.actions[action][1])
        raise _failure(reply, self.station_id, self.node)


def _failure(reply: wire.CallReply, station_id: str, node: str) -> Exception:
    if reply.error == "offline":
        return StationNotConnectedError(station_id)
    kind = ErrorKind(reply.kind) if reply.kind in _KINDS else ErrorKind.GENERIC
    error = OcppError(kind, reply.description, dict(reply.details))
    if reply.error == "ocpp":
        return error
    return CallFailedError(error, timed_out=reply.timed_out, error_code=reply.code)


_KINDS = {k.value for k in ErrorKind}


class ClusterLinks:
    """Every station of the cluster, connected here or to another node."""

    def __init__(
        self,
        node_id: str,
        prefix: str,
        local: LocalLinks,
        directory: Directory,
        broker: Broker,
        dialects: dict[str, Dialect],
        *,
        call_timeout_s: float = 30.0,
        notify_disconnect: Callable[[str, str], None] | None = None,
    ) -> None:
        self.node_id = node_id
        self.prefix = prefix
        self.local = local
        self.directory = directory
        self.broker = broker
        self.dialects = dialects
        self.call_timeout_s = call_timeout_s
        self.notify_disconnect = notify_disconnect

    def get(self, station_id: str) -> StationLink | None:
        link = self.local.get(station_id)
        if link is not None:
            return link
        found = self.directory.holder(station_id)
        if found is None:
            return None
        return RemoteLink(station_id, found[1], found[0], self)

    def connected(self, station_id: str) -> str | None:
        return self.directory.connected(station_id)

    def disconnect(self, station_id: str, reason: str) -> bool:
        """Close the station's connection, here or (by a note) on the node holding it."""
        if self.local.connected(station_id) is not None:
            return self.local.disconnect(station_id, reason)
        if self.directory.holder(station_id) is None or self.notify_disconnect is None:
            return False
        self.notify_disconnect(station_id, reason)
        return True

    async def request(self, node: str, data: bytes, wait: float, station_id: str) -> bytes:
        """Send a call to ``node``; its reply, or the error a lost route is."""
        subject = call_subject(self.prefix, node)
        try:
            return await ask_node(self.broker, self.directory, node, subject, data, wait)
        except NodeLostError as exc:
            raise _unanswered(
                station_id, node, "it left the cluster while the call was under way"
            ) from exc
        except NoRespondersError as exc:
            raise StationNotConnectedError(station_id) from exc
        except RequestTimeoutError as exc:
            raise _unanswered(station_id, node, f"no reply within {wait:g} s") from exc
        except BrokerError as exc:
            raise _unanswered(station_id, node, f"the cluster broker failed: {exc}") from exc


class NodeLostError(Exception):
    """The node asked was declared gone (:meth:`Directory.lost`) before it replied."""


async def ask_node(
    broker: Broker, directory: Directory, node: str, subject: str, data: bytes, wait: float
) -> bytes:
    """A request to ``node`` on ``subject``: its reply, the broker's error, or
    :class:`NodeLostError` as soon as the directory declares the node gone (a dead node's
    request would otherwise wait for its whole timeout)."""
    asking: asyncio.Future[bytes] = asyncio.ensure_future(broker.request(subject, data, wait))
    waits: list[asyncio.Future[Any]] = [asking, directory.lost(node)]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not asking.done():
            asking.cancel()
            with contextlib.suppress(BaseException):
                await asking
    if asking.cancelled():
        raise NodeLostError(node)
    return asking.result()


def _unanswered(station_id: str, node: str, why: str) -> CallFailedError:
    message = (
        f"node {node}, which holds station {station_id}'s connection, stopped answering ({why}); "
        "the command may or may not have reached the station"
    )
    log.warning("cluster call failed", station_id=station_id, peer=node, reason=why)
    return CallFailedError(OcppError(ErrorKind.GENERIC, message), timed_out=True)


class CallServer:
    """Answers the calls other nodes send for stations this node holds."""

    def __init__(self, local: LocalLinks, dialects: dict[str, Dialect]) -> None:
        self.local = local
        self.dialects = dialects
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, data: bytes, respond: Callable[[bytes], object] | None) -> None:
        """One request: served in a task of its own, so a slow station holds up no other."""
        if respond is None:
            return
        task = asyncio.get_running_loop().create_task(self._serve(data, respond))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, data: bytes, respond: Callable[[bytes], object]) -> None:
        try:
            reply = await self._answer(data)
        except Exception as exc:  # our fault: the caller gets an InternalError, not a hang
            log.error("cluster call could not be served", exc_info=exc)
            reply = wire.CallReply(
                error="call", kind=ErrorKind.INTERNAL.value, description=str(exc)
            )
        result = respond(_encode(reply))
        if asyncio.iscoroutine(result):
            try:
                await result
            except BrokerError as exc:
                log.warning("cluster call reply not sent", error=str(exc))

    async def _answer(self, data: bytes) -> wire.CallReply:
        try:
            message = _request.decode(data)
        except msgspec.DecodeError as exc:
            return wire.CallReply(error="ocpp", kind="format", description=f"bad request: {exc}")
        link = self.local.get(message.station_id)
        if link is None or link.ocpp_version != message.version:
            return wire.CallReply(error="offline")
        dialect = self.dialects[link.ocpp_version]
        types = dialect.actions.get(message.action)
        if types is None:
            return wire.CallReply(
                error="ocpp", kind="not-implemented", description=f"unknown {message.action}"
            )
        try:
            request = msgspec.json.decode(message.payload, type=types[0])
            response = await link.call(request, message.timeout)
        except StationNotConnectedError:
            return wire.CallReply(error="offline")
        except msgspec.ValidationError as exc:
            return wire.CallReply(error="ocpp", kind="format", description=str(exc))
        except OcppError as exc:
            return wire.CallReply(
                error="ocpp", kind=exc.kind.value, description=exc.description, details=exc.details
            )
        except CallFailedError as exc:
            return wire.CallReply(
                error="call",
                kind=exc.error.kind.value,
                description=exc.error.description,
                details=exc.error.details,
                code=exc.error_code,
                timed_out=exc.timed_out,
            )
        return wire.CallReply(response=msgspec.Raw(_encode(response)))
