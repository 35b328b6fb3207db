"""The OCPP-J WebSocket server (picows on asyncio/uvloop): the only loop around the RPC session.

OCPP-J 1.6 section 3 / OCPP 2.0.1 Part 4 section 3: the station connects to
``ws(s)://HOST:PORT/<prefix>/<stationId>`` offering subprotocols ``ocpp1.6`` / ``ocpp2.0.1``; the
CSMS picks one it speaks or refuses the handshake. Security profile 1 adds HTTP Basic
authentication with the station id as user name; profile 2/3 add TLS (pass an ``ssl`` context).

Each connection owns one :class:`~chargegrid.protocols.ocppj.session.RpcSession`; this module feeds
it frames with the loop's clock, hands each delivered CALL to the service with a callback that
answers it, writes what the session wants sent and arms a timer for the session's next deadline.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import unquote

import msgspec
import picows
import picows.picows as picows_protocol
import structlog

from chargegrid.adapters.transport.stats import ServerStats
from chargegrid.adapters.transport.tls import channel_of, refusal_reason
from chargegrid.domain.security import Channel, Refusal
from chargegrid.protocols.ocppj.dialect import Dialect
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.protocols.ocppj.session import (
    CallAnswered,
    CallFailed,
    CallReceived,
    Event,
    InputRejected,
    LateReplyDropped,
    OutboundInvalid,
    RpcSession,
)
from chargegrid.protocols.ocppj.validation import Deviation, Repair
from chargegrid.service.ocpp.context import (
    CallFailedError,
    StationContext,
    StationNotConnectedError,
)
from chargegrid.service.ocpp.eager import run_eagerly

log = structlog.get_logger(__name__)


class ConnectionHooks(Protocol):
    """What the transport asks of the service layer."""

    def admit(self, station_id: str, password: str | None, channel: Channel) -> Refusal | None:
        """Why the station may not connect (None: it may). Synchronous, from an in-memory
        cache: it runs inside the HTTP upgrade."""
        ...

    def lenient(self, station_id: str) -> frozenset[Deviation]: ...

    async def connected(self, ctx: StationContext) -> None: ...

    async def disconnected(self, ctx: StationContext) -> None: ...

    def serve(
        self,
        ctx: StationContext,
        action: str,
        request: Any,
        respond: Callable[[msgspec.Struct | None, BaseException | None], None],
    ) -> None:
        """Handle a CALL; call ``respond`` with the response or the error, now or later."""
        ...

    async def drain(self) -> None:
        """Wait for the CALLs being handled to be answered (at shutdown)."""
        ...


@dataclass(frozen=True)
class ServerOptions:
    host: str = "0.0.0.0"  # noqa: S104 - a CSMS listens for stations on every interface
    port: int = 9000
    path_prefixes: Sequence[str] = ("/ocpp",)
    ping_interval_s: float = 60.0
    call_timeout_s: float = 30.0
    max_message_bytes: int = 1 << 20
    tls_port: int | None = None  # with an ``ssl`` context: the port of wss:// (profiles 2, 3)
    tls_handshake_timeout_s: float = 10.0


class StationConnection(picows.WSListener):
    """One station's WebSocket, with its RPC session."""

    def __init__(self, server: OcppServer, ctx: StationContext, session: RpcSession) -> None:
        self.server = server
        self.ctx = ctx
        self.session = session
        self.station_id = ctx.station_id
        self.ocpp_version = ctx.ocpp_version
        self.log = log.bind(station_id=ctx.station_id, ocpp=ctx.ocpp_version)
        self.transport: picows.WSTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future[msgspec.Struct]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._fragments: list[bytes] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._pumping = False
        self._pump_again = False
        self.closed = asyncio.Event()

    # --- picows callbacks -------------------------------------------------------------------

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        self.server._register(self)
        self._spawn(self.server.hooks.connected(self.ctx))
        self.log.info("station connected")

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type == picows.WSMsgType.TEXT or msg_type == picows.WSMsgType.CONTINUATION:
            data = frame.get_payload_as_bytes()
            if not frame.fin or self._fragments:
                self._fragments.append(data)
                if sum(map(len, self._fragments)) > self.server.options.max_message_bytes:
                    self.log.warning("message too big; closing")
                    self._fragments = []
                    transport.send_close(picows.WSCloseCode.MESSAGE_TOO_BIG)
                    transport.disconnect()
                    return
                if not frame.fin:
                    return
                data, self._fragments = b"".join(self._fragments), []
            now = self._loop.time()
            tap = self.server.tap
            if tap is not None:
                tap(self.station_id, "in", data, now)
            self.session.receive(data, now)
            self._pump()
        elif msg_type == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif msg_type == picows.WSMsgType.BINARY:
            self.log.warning("binary frame ignored; OCPP-J is text")

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.session.fail_all("connection closed")
        self._dispatch(self.session.events())
        # A connection replaced by the station's new one must not mark the station offline.
        if self.server._unregister(self):
            self._spawn(self.server.hooks.disconnected(self.ctx))
        self.closed.set()
        self.log.info("station disconnected")

    # --- the session's output ---------------------------------------------------------------

    def _pump(self) -> None:
        # A CALL is often answered while its event is dispatched, which delivers the next queued
        # CALL, and so on: loop here instead of recursing once per queued CALL.
        if self._pumping:
            self._pump_again = True
            return
        self._pumping = True
        try:
            while True:
                self._pump_again = False
                self._dispatch(self.session.events())
                self._flush()
                if not self._pump_again:
                    return
        finally:
            self._pumping = False

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        tap = self.server.tap
        for frame in self.session.data_to_send():
            transport.send(picows.WSMsgType.TEXT, frame)
            if tap is not None:
                tap(self.station_id, "out", frame, self._loop.time())
        self._arm_timer()

    def _arm_timer(self) -> None:
        deadline = self.session.next_deadline()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.session.tick(self._loop.time())
        self._pump()

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, CallReceived):
                self._serve(event)
            elif isinstance(event, CallAnswered):
                self._resolve(event.handle, event, None)
                self._log_repairs(event.action, event.repairs)
            elif isinstance(event, CallFailed):
                failure = CallFailedError(
                    event.error, timed_out=event.timed_out, error_code=event.error_code
                )
                self._resolve(event.handle, None, failure)
            elif isinstance(event, InputRejected):
                self.server.stats.rejected[event.code] += 1
                self.log.warning(
                    "input rejected",
                    code=event.code,
                    reason=event.error.description,
                    message=event.text,
                )
            elif isinstance(event, LateReplyDropped):
                self.log.warning(
                    "reply dropped: no call waits for it",
                    unique_id=event.unique_id,
                    timed_out=event.timed_out,
                )
            elif isinstance(event, OutboundInvalid):
                self.log.error(
                    "our payload failed validation; not sent",
                    action=event.action,
                    reason=event.error.description,
                )

    def _resolve(
        self, handle: int, answered: CallAnswered | None, failure: Exception | None
    ) -> None:
        future = self._pending.pop(handle, None)
        if future is None or future.done():
            return
        if answered is not None:
            future.set_result(answered.response)
        elif failure is not None:
            future.set_exception(failure)

    def _log_repairs(self, action: str, repairs: tuple[Repair, ...]) -> None:
        for repair in repairs:
            self.log.warning(
                "lenient: accepted deviation",
                action=action,
                deviation=repair.deviation.value,
                path=repair.path,
                found=repair.found,
            )

    def _serve(self, event: CallReceived) -> None:
        self._log_repairs(event.action, event.repairs)
        unique_id, action = event.unique_id, event.action
        received = self._loop.time()
        stats = self.server.stats

        def respond(response: msgspec.Struct | None, error: BaseException | None) -> None:
            if self.closed.is_set():
                return  # the station is gone; it will resend what it did not see answered
            elapsed = self._loop.time() - received
            if error is None and response is not None:
                stats.answered(action, "ok", elapsed)
                self.session.reply(unique_id, response)
            elif isinstance(error, OcppError):
                self.log.warning(
                    "call refused", action=action, code=error.kind.value, reason=error.description
                )
                stats.answered(action, self.session.dialect.code(error.kind), elapsed)
                self.session.reply_error(unique_id, error)
            else:  # every handler fault is answered, never a dropped connection
                self.log.error("handler failed", action=action, exc_info=error)
                name = type(error).__name__ if error is not None else "no response"
                stats.answered(action, self.session.dialect.code(ErrorKind.INTERNAL), elapsed)
                self.session.reply_error(unique_id, OcppError(ErrorKind.INTERNAL, name))
            self._pump()

        self.server.hooks.serve(self.ctx, action, event.request, respond)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the StationLink port ---------------------------------------------------------------

    async def call(self, request: msgspec.Struct, timeout: float | None = None) -> msgspec.Struct:
        """Send a CSMS-initiated call; its timeout is kept by the session."""
        if self.transport is None or self.closed.is_set():
            raise StationNotConnectedError(self.station_id)
        handle = self.session.call(request, self._loop.time(), timeout)
        future: asyncio.Future[msgspec.Struct] = self._loop.create_future()
        self._pending[handle] = future
        self._flush()
        try:
            return await future
        except asyncio.CancelledError:
            self.session.cancel(handle)
            raise

    def close(self, code: picows.WSCloseCode = picows.WSCloseCode.OK, reason: bytes = b"") -> None:
        if self.transport is not None:
            self.transport.send_close(code, reason)
            self.transport.disconnect(graceful=True)


class OcppServer:
    """Accepts stations, negotiates the OCPP version and keeps the live connections by id."""

    def __init__(
        self,
        hooks: ConnectionHooks,
        dialects: Sequence[Dialect],
        options: ServerOptions,
        ssl: Any = None,
        tap: Callable[[str, str, bytes | str, float], None] | None = None,
    ) -> None:
        self.hooks = hooks
        self.options = options
        # Called with every complete frame both ways (station id, "in"/"out", frame, loop
        # time), e.g. the message log's; it must only queue, never block or parse much.
        self.tap = tap
        self.dialects: Mapping[str, Dialect] = {d.subprotocol: d for d in dialects}
        self._preference = [d.subprotocol for d in dialects]
        self._ssl = ssl
        self._server: asyncio.Server | None = None
        self._tls_server: asyncio.Server | None = None
        self._handshakes: set[asyncio.Task[None]] = set()
        self.connections: dict[str, StationConnection] = {}
        self.port = options.port
        self.tls_port = options.tls_port
        self.stats = ServerStats()

    async def start(self) -> None:
        opts = self.options
        self._server = await picows.ws_create_server(
            self._accept_plain,
            opts.host,
            opts.port,
            enable_auto_ping=opts.ping_interval_s > 0,
            auto_ping_idle_timeout=max(opts.ping_interval_s, 0.1),
            auto_ping_reply_timeout=max(opts.ping_interval_s, 0.1),
            max_frame_size=opts.max_message_bytes,
            websocket_handshake_timeout=_WS_HANDSHAKE_TIMEOUT_S,
            read_buffer_init_size=_READ_BUFFER_INIT,
            backlog=_LISTEN_BACKLOG,
        )
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("OCPP server listening", host=opts.host, port=self.port)
        if self._ssl is not None and opts.tls_port is not None:
            loop = asyncio.get_running_loop()
            self._tls_server = await loop.create_server(
                lambda: _TlsGate(self), opts.host, opts.tls_port, backlog=_LISTEN_BACKLOG
            )
            sockets = self._tls_server.sockets
            if sockets:
                self.tls_port = sockets[0].getsockname()[1]
            log.info("OCPP TLS server listening", host=opts.host, port=self.tls_port)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every station with 1001 Going Away, wait for them to go."""
        for server in (self._server, self._tls_server):
            if server is not None:
                server.close()
        for handshake in list(self._handshakes):
            handshake.cancel()
        connections = list(self.connections.values())
        for conn in connections:
            conn.close(picows.WSCloseCode.GOING_AWAY, b"server shutting down")
        if connections:
            await asyncio.wait(
                [asyncio.ensure_future(c.closed.wait()) for c in connections], timeout=timeout
            )
        pending = [t for c in connections for t in c._tasks]
        pending.append(asyncio.ensure_future(self.hooks.drain()))
        await asyncio.wait(pending, timeout=timeout)
        for server in (self._server, self._tls_server):
            if server is not None:
                await server.wait_closed()

    def get(self, station_id: str) -> StationConnection | None:
        return self.connections.get(station_id)

    def versions(self) -> Counter[str]:
        """Live connections by OCPP version."""
        return Counter(conn.ocpp_version for conn in self.connections.values())

    def connected(self, station_id: str) -> str | None:
        """The OCPP version of the station's live connection, or None."""
        conn = self.connections.get(station_id)
        return None if conn is None else conn.ocpp_version

    def disconnect(self, station_id: str, reason: str) -> bool:
        """Close the station's connection (1008 policy violation); False if it has none."""
        conn = self.connections.get(station_id)
        if conn is None:
            return False
        conn.log.info("disconnected by the CSMS", reason=reason)
        conn.close(picows.WSCloseCode.POLICY_VIOLATION, reason.encode()[:120])
        return True

    # --- handshake --------------------------------------------------------------------------

    def _accept_plain(self, request: picows.WSUpgradeRequest) -> Any:
        return self._accept(request, _PLAIN)

    def _accept(self, request: picows.WSUpgradeRequest, channel: Channel) -> Any:
        station_id = self._station_id(request.path)
        if station_id is None:
            return _refuse(404, "unknown path; stations connect to /ocpp/<stationId>")
        offered = _offered(request.headers.get("Sec-WebSocket-Protocol", ""))
        chosen = next((p for p in self._preference if p in offered), None)
        if chosen is None:
            log.warning(
                "handshake refused: no common OCPP version",
                station_id=station_id,
                offered=sorted(offered),
            )
            return _refuse(
                400, f"no supported subprotocol; this CSMS speaks {', '.join(self._preference)}"
            )
        password = _basic_password(request.headers.get("Authorization"), station_id)
        refused = self.hooks.admit(station_id, password, channel)
        if refused is not None:
            log.warning(
                "handshake refused",
                station_id=station_id,
                reason=refused.reason,
                tls=channel.tls,
                client_cert=channel.client_cn,
            )
            self.stats.refused_handshakes += 1
            if not refused.bad_credentials:
                return _refuse(403, refused.reason)
            return picows.WSUpgradeResponseWithListener(
                picows.WSUpgradeResponse.create_error_response(
                    401, b"authentication required", {"WWW-Authenticate": 'Basic realm="ocpp"'}
                ),
                None,
            )
        dialect = self.dialects[chosen]
        ctx = StationContext(station_id, dialect.version)
        session = RpcSession(dialect, self.hooks.lenient(station_id), self.options.call_timeout_s)
        listener = StationConnection(self, ctx, session)
        response = picows.WSUpgradeResponse.create_101_response({"Sec-WebSocket-Protocol": chosen})
        return picows.WSUpgradeResponseWithListener(response, listener)

    def _station_id(self, raw_path: bytes) -> str | None:
        path = raw_path.decode("latin-1").split("?", 1)[0]
        prefix, _, last = path.rstrip("/").rpartition("/")
        station_id = unquote(last)
        if not station_id or len(station_id) > 48 or not station_id.isprintable():
            return None
        prefixes = {p.rstrip("/") for p in self.options.path_prefixes}
        return station_id if prefix in prefixes else None

    def _register(self, conn: StationConnection) -> None:
        stale = self.connections.get(conn.station_id)
        self.connections[conn.station_id] = conn
        if stale is not None and stale is not conn:
            stale.log.info("replaced by a new connection")
            stale.close(picows.WSCloseCode.POLICY_VIOLATION, b"replaced by a new connection")

    def _unregister(self, conn: StationConnection) -> bool:
        """Forget ``conn``; False if the station has a newer connection already."""
        if self.connections.get(conn.station_id) is conn:
            del self.connections[conn.station_id]
            return True
        return False

    # --- the TLS port ------------------------------------------------------------------------

    def _tls_handshake(self, transport: asyncio.Transport) -> None:
        # Stepped at once, not in a task started on the next turn of the loop: start_tls must
        # take the connection before the station's ClientHello arrives. uvloop reads as soon
        # as the connection is made and does not heed a pause_reading() made in between.
        run_eagerly(
            self._upgrade_to_tls(transport),
            contextvars.copy_context(),
            _handshake_ended,
            self._handshakes,
        )

    async def _upgrade_to_tls(self, transport: asyncio.Transport) -> None:
        """TLS on an accepted connection, then the WebSocket protocol on top of it."""
        loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        early = _EarlyBytes()
        try:
            secure = await loop.start_tls(
                transport,
                early,
                self._ssl,
                server_side=True,
                ssl_handshake_timeout=self.options.tls_handshake_timeout_s,
            )
        except asyncio.CancelledError:
            transport.close()
            raise
        except Exception as exc:  # ssl.SSLError is an OSError; a peer gone early, RuntimeError
            self.stats.refused_handshakes += 1
            log.warning("TLS handshake refused", peer=_peer(peer), reason=refusal_reason(exc))
            transport.close()
            return
        if secure is None or early.lost:
            return
        channel = channel_of(secure)
        opts = self.options
        protocol = picows_protocol.WSProtocol(  # type: ignore[attr-defined]  # not in the stubs
            None,  # host and port: a client's
            None,  # path: a client's
            False,  # is_client_side
            lambda request: self._accept(request, channel),
            logging.getLogger("picows.server"),
            True,  # disconnect_on_exception
            _WS_HANDSHAKE_TIMEOUT_S,
            opts.ping_interval_s > 0,
            max(opts.ping_interval_s, 0.1),
            max(opts.ping_interval_s, 0.1),
            picows.WSAutoPingStrategy.PING_WHEN_IDLE,
            True,  # enable_auto_pong
            opts.max_message_bytes,
            None,  # extra headers
            _READ_BUFFER_INIT,
        )
        secure.set_protocol(protocol)
        protocol.connection_made(secure)
        early.hand_over(protocol)


class _TlsGate(asyncio.Protocol):
    """A connection to the TLS port until its handshake starts: no byte may be read before."""

    def __init__(self, server: OcppServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is no asyncio.Transport subclass: a cast, not an isinstance
        accepted = cast(asyncio.Transport, transport)
        accepted.pause_reading()  # the ClientHello is start_tls's to read
        self.server._tls_handshake(accepted)


class _EarlyBytes(asyncio.Protocol):
    """The application side of a TLS connection until the WebSocket protocol takes over: keeps
    what arrives in between (a station sends its upgrade request right after the handshake)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.lost = False

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def hand_over(self, protocol: asyncio.BufferedProtocol) -> None:
        view = memoryview(self.data)
        while view:
            buffer = memoryview(protocol.get_buffer(len(view)))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            protocol.buffer_updated(n)
            view = view[n:]
        self.data = bytearray()


def _handshake_ended(_: None, error: BaseException | None) -> None:
    if error is not None:  # _upgrade_to_tls logs the refusals it expects; this is a fault
        log.error("TLS upgrade failed", exc_info=error)


_PLAIN = Channel()
_WS_HANDSHAKE_TIMEOUT_S = 10
_READ_BUFFER_INIT = 2048  # grows on demand; 16 KiB idle per station otherwise
# asyncio's default of 100 pending connections drops the SYNs of a boot storm, which the
# stations then resend only after 1, 3, 7, 15, 31 s; the kernel caps it (net.core.somaxconn).
_LISTEN_BACKLOG = 4096


def _peer(peername: Any) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return str(peername)


def _refuse(status: int, reason: str) -> picows.WSUpgradeResponseWithListener:
    return picows.WSUpgradeResponseWithListener(
        picows.WSUpgradeResponse.create_error_response(status, reason.encode()), None
    )


def _offered(header: str) -> set[str]:
    return {p.strip() for p in header.split(",") if p.strip()}


def _basic_password(header: str | None, station_id: str) -> str | None:
    """The password of an ``Authorization: Basic`` header whose user is ``station_id``."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, sep, password = (
            base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password if sep and user == station_id else None
