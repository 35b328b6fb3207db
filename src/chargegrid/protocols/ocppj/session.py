"""The OCPP-J RPC session, sans I/O: framing, correlation, ordering and timeouts.

OCPP-J 1.6 section 4 and OCPP 2.0.1 Part 4 section 4 define three frames::

    [2, "<uniqueId>", "<Action>", {payload}]                         CALL
    [3, "<uniqueId>", {payload}]                                     CALLRESULT
    [4, "<uniqueId>", "<errorCode>", "<errorDescription>", {details}]  CALLERROR

Rules this session keeps (the transition table is :meth:`RpcSession.receive` plus the two queues):

* At most one CALL is outstanding per direction. Calls we make while one is outstanding wait in
  ``_out_queue``; a station's second CALL before we answered its first (some firmware does that) is
  held in ``_in_queue`` and delivered after the first is answered, so it is served in order and the
  station is not disconnected.
* Every outstanding call has a deadline. :meth:`RpcSession.tick` with the current time fails calls
  whose deadline passed. A reply that arrives later is reported as :class:`LateReplyDropped` and
  never matched to another call, because unique ids are never reused.
* Every payload is validated in both directions: inbound by strict decoding (or lenient, with the
  station's listed deviations), outbound by decoding what we encoded before it is sent.
* Bad input is answered with the CALLERROR code of the dialect and reported as
  :class:`InputRejected`; the session stays usable.

The owner feeds text in with :meth:`receive` and an explicit ``now`` (seconds, monotonic), drains
:meth:`events` and :meth:`data_to_send`, and calls :meth:`tick` by :meth:`next_deadline`.
"""

from __future__ import annotations

import itertools
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from chargegrid.protocols.ocppj.dialect import Dialect
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.protocols.ocppj.validation import Deviation, Repair, classify, decode_lenient

CALL, CALLRESULT, CALLERROR = 2, 3, 4
_UNKNOWN_ID = "-1"
_LATE_MEMORY = 256


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallReceived:
    """The station called us; answer with :meth:`RpcSession.reply` or ``reply_error``."""

    unique_id: str
    action: str
    request: msgspec.Struct
    repairs: tuple[Repair, ...] = ()


@dataclass(frozen=True, slots=True)
class CallAnswered:
    """A call we made got a valid CALLRESULT."""

    handle: int
    action: str
    response: msgspec.Struct
    repairs: tuple[Repair, ...] = ()


@dataclass(frozen=True, slots=True)
class CallFailed:
    """A call we made got a CALLERROR, an invalid result, timed out, or was cancelled."""

    handle: int
    action: str
    error: OcppError
    timed_out: bool = False
    error_code: str = ""  # the wire code when the station sent a CALLERROR


@dataclass(frozen=True, slots=True)
class InputRejected:
    """Bad input from the peer; a CALLERROR with ``code`` was queued when ``answered``."""

    unique_id: str
    code: str
    error: OcppError
    text: str
    answered: bool


@dataclass(frozen=True, slots=True)
class LateReplyDropped:
    """A reply to a call that had already timed out (or was never made); dropped."""

    unique_id: str
    text: str
    timed_out: bool  # True: we gave up on this call earlier; False: we never made it


@dataclass(frozen=True, slots=True)
class OutboundInvalid:
    """A payload we were about to send failed validation; it was not sent."""

    unique_id: str
    action: str
    error: OcppError


Event = (
    CallReceived | CallAnswered | CallFailed | InputRejected | LateReplyDropped | OutboundInvalid
)


@dataclass(slots=True)
class _OutCall:
    handle: int
    unique_id: str
    action: str
    frame: bytes
    timeout: float
    deadline: float = 0.0


@dataclass(slots=True)
class _InCall:
    unique_id: str
    action: str
    request: msgspec.Struct
    repairs: tuple[Repair, ...]


@dataclass
class RpcSession:
    """One OCPP-J connection seen from the CSMS side (the server of OCPP-J)."""

    dialect: Dialect
    lenient: frozenset[Deviation] = frozenset()
    call_timeout: float = 30.0
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    _events: list[Event] = field(default_factory=list)
    _outbox: list[bytes] = field(default_factory=list)
    _out_queue: deque[_OutCall] = field(default_factory=deque)
    _outstanding: _OutCall | None = None
    _in_queue: deque[_InCall] = field(default_factory=deque)
    _serving: _InCall | None = None
    _late: OrderedDict[str, str] = field(default_factory=OrderedDict)
    _handles: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- input ----------------------------------------------------------------------------

    def receive(self, text: bytes | str, now: float) -> None:
        """Take one WebSocket text message from the station."""
        try:
            parts = msgspec.json.decode(text, type=list[msgspec.Raw])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self._reject(
                _UNKNOWN_ID, OcppError(ErrorKind.RPC_FRAMEWORK, f"not a JSON array: {exc}"), text
            )
            return
        if len(parts) < 3:
            self._reject(_UNKNOWN_ID, OcppError(ErrorKind.RPC_FRAMEWORK, "frame too short"), text)
            return
        try:
            unique_id = msgspec.json.decode(parts[1], type=str)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._reject(
                _UNKNOWN_ID, OcppError(ErrorKind.RPC_FRAMEWORK, "uniqueId is not a string"), text
            )
            return
        try:
            kind = msgspec.json.decode(parts[0], type=int)
        except (msgspec.DecodeError, msgspec.ValidationError):
            kind = -1
        if kind == CALL:
            self._receive_call(unique_id, parts, text)
        elif kind == CALLRESULT:
            self._receive_result(unique_id, parts, text, now)
        elif kind == CALLERROR:
            self._receive_error(unique_id, parts, text, now)
        else:
            error = OcppError(
                ErrorKind.MESSAGE_TYPE_NOT_SUPPORTED,
                f"unknown MessageTypeId {bytes(parts[0]).decode(errors='replace')}",
            )
            self._reject(unique_id, error, text)

    def _receive_call(self, unique_id: str, parts: list[msgspec.Raw], text: bytes | str) -> None:
        if len(parts) != 4:
            self._reject(
                unique_id, OcppError(ErrorKind.PROTOCOL, "CALL must have 4 elements"), text
            )
            return
        try:
            action = msgspec.json.decode(parts[2], type=str)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._reject(
                unique_id, OcppError(ErrorKind.RPC_FRAMEWORK, "Action is not a string"), text
            )
            return
        types = self.dialect.actions.get(action)
        if types is None:
            self._reject(
                unique_id, OcppError(ErrorKind.NOT_IMPLEMENTED, f"unknown action {action!r}"), text
            )
            return
        if action not in self.dialect.station_actions:
            error = OcppError(
                ErrorKind.NOT_SUPPORTED, f"{action} is not sent by a charging station"
            )
            self._reject(unique_id, error, text)
            return
        try:
            request, repairs = decode_lenient(bytes(parts[3]), types[0], self.lenient)
        except OcppError as exc:
            self._reject(unique_id, exc, text)
            return
        call = _InCall(unique_id, action, request, tuple(repairs))
        if self._serving is None:
            self._deliver(call)
        else:
            self._in_queue.append(call)

    def _deliver(self, call: _InCall) -> None:
        self._serving = call
        self._events.append(CallReceived(call.unique_id, call.action, call.request, call.repairs))

    def _receive_result(
        self, unique_id: str, parts: list[msgspec.Raw], text: bytes | str, now: float
    ) -> None:
        call = self._match(unique_id, text)
        if call is None:
            return
        if len(parts) != 3:
            self._finish(
                CallFailed(
                    call.handle,
                    call.action,
                    OcppError(ErrorKind.PROTOCOL, "CALLRESULT must have 3 elements"),
                ),
                now,
            )
            return
        response_type = self.dialect.actions[call.action][1]
        try:
            response, repairs = decode_lenient(bytes(parts[2]), response_type, self.lenient)
        except OcppError as exc:
            self._finish(CallFailed(call.handle, call.action, exc), now)
            return
        self._finish(CallAnswered(call.handle, call.action, response, tuple(repairs)), now)

    def _receive_error(
        self, unique_id: str, parts: list[msgspec.Raw], text: bytes | str, now: float
    ) -> None:
        call = self._match(unique_id, text)
        if call is None:
            return
        try:
            code = msgspec.json.decode(parts[2], type=str)
            description = msgspec.json.decode(parts[3], type=str) if len(parts) > 3 else ""
            details: Any = msgspec.json.decode(parts[4]) if len(parts) > 4 else {}
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            code, description, details = "", f"malformed CALLERROR: {exc}", {}
        kind = self.dialect.kind_of.get(code, ErrorKind.GENERIC)
        error = OcppError(
            kind, description, details if isinstance(details, dict) else {"details": details}
        )
        self._finish(CallFailed(call.handle, call.action, error, error_code=code), now)

    def _match(self, unique_id: str, text: bytes | str) -> _OutCall | None:
        call = self._outstanding
        if call is not None and call.unique_id == unique_id:
            return call
        self._events.append(LateReplyDropped(unique_id, _as_text(text), unique_id in self._late))
        return None

    def _reject(self, unique_id: str, error: OcppError, text: bytes | str) -> None:
        code = self.dialect.code(error.kind)
        self._outbox.append(_encode_error(unique_id, code, error.description, error.details))
        self._events.append(InputRejected(unique_id, code, error, _as_text(text), answered=True))

    # --- answering the station's calls ------------------------------------------------------

    def reply(self, unique_id: str, response: msgspec.Struct) -> None:
        """Answer the CALL being served with a CALLRESULT, after validating it."""
        action = self._take_serving(unique_id)
        expected = self.dialect.actions[action][1]
        payload = msgspec.json.encode(response)
        try:
            if not isinstance(response, expected):
                raise OcppError(
                    ErrorKind.INTERNAL, f"{action} must be answered with {expected.__name__}"
                )
            msgspec.json.decode(payload, type=expected)
        except (msgspec.ValidationError, OcppError) as exc:
            error = exc if isinstance(exc, OcppError) else OcppError(ErrorKind.INTERNAL, str(exc))
            self._events.append(OutboundInvalid(unique_id, action, error))
            self._outbox.append(
                _encode_error(
                    unique_id,
                    self.dialect.code(ErrorKind.INTERNAL),
                    "response failed validation",
                    {},
                )
            )
        else:
            self._outbox.append(b"[3," + msgspec.json.encode(unique_id) + b"," + payload + b"]")
        self._next_inbound()

    def reply_error(self, unique_id: str, error: OcppError) -> None:
        """Answer the CALL being served with a CALLERROR."""
        self._take_serving(unique_id)
        code = self.dialect.code(error.kind)
        self._outbox.append(_encode_error(unique_id, code, error.description, error.details))
        self._next_inbound()

    def _take_serving(self, unique_id: str) -> str:
        if self._serving is None or self._serving.unique_id != unique_id:
            raise RuntimeError(f"call {unique_id!r} is not the one being served")
        return self._serving.action

    def _next_inbound(self) -> None:
        self._serving = None
        if self._in_queue:
            self._deliver(self._in_queue.popleft())

    # --- our calls to the station -----------------------------------------------------------

    def call(self, request: msgspec.Struct, now: float, timeout: float | None = None) -> int:
        """Queue a CALL to the station; return a handle that its answer event will carry.

        Raises :class:`OcppError` (kind PROPERTY/TYPE/OCCURRENCE constraint) if ``request`` fails
        validation; nothing is queued then.
        """
        action = self.dialect.action_of.get(type(request))
        if action is None or action not in self.dialect.csms_actions:
            raise OcppError(
                ErrorKind.NOT_SUPPORTED, f"{type(request).__name__} is not sent by a CSMS"
            )
        payload = msgspec.json.encode(request)
        try:
            msgspec.json.decode(payload, type=type(request))
        except msgspec.ValidationError as exc:
            raise OcppError(classify(exc), str(exc)) from exc
        unique_id = self.new_id()
        frame = (
            b"[2,"
            + msgspec.json.encode(unique_id)
            + b","
            + msgspec.json.encode(action)
            + b","
            + payload
            + b"]"
        )
        out = _OutCall(next(self._handles), unique_id, action, frame, timeout or self.call_timeout)
        self._out_queue.append(out)
        self._send_next(now)
        return out.handle

    def cancel(self, handle: int) -> bool:
        """Drop a queued call that has not been sent; True if it was dropped."""
        for out in self._out_queue:
            if out.handle == handle:
                self._out_queue.remove(out)
                return True
        return False

    def _send_next(self, now: float) -> None:
        if self._outstanding is None and self._out_queue:
            out = self._out_queue.popleft()
            out.deadline = now + out.timeout
            self._outstanding = out
            self._outbox.append(out.frame)

    def _finish(self, event: CallAnswered | CallFailed, now: float) -> None:
        self._outstanding = None
        self._events.append(event)
        self._send_next(now)

    def tick(self, now: float) -> None:
        """Fail the outstanding call if its deadline has passed."""
        call = self._outstanding
        if call is not None and now >= call.deadline:
            self._late[call.unique_id] = call.action
            while len(self._late) > _LATE_MEMORY:
                self._late.popitem(last=False)
            error = OcppError(
                ErrorKind.GENERIC, f"no answer to {call.action} within {call.timeout:g} s"
            )
            self._finish(CallFailed(call.handle, call.action, error, timed_out=True), now)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do, or None."""
        return self._outstanding.deadline if self._outstanding is not None else None

    def fail_all(self, reason: str) -> None:
        """The connection is gone: fail the outstanding and every queued call."""
        pending = ([self._outstanding] if self._outstanding else []) + list(self._out_queue)
        self._outstanding = None
        self._out_queue.clear()
        for out in pending:
            self._events.append(
                CallFailed(out.handle, out.action, OcppError(ErrorKind.GENERIC, reason))
            )

    # --- output ---------------------------------------------------------------------------

    def events(self) -> list[Event]:
        """Events since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[bytes]:
        """Frames to write to the WebSocket, in order."""
        out, self._outbox = self._outbox, []
        return out


def _encode_error(unique_id: str, code: str, description: str, details: dict[str, Any]) -> bytes:
    return msgspec.json.encode([CALLERROR, unique_id, code, description[:255], details])


def _as_text(text: bytes | str) -> str:
    value = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return value if len(value) <= 500 else value[:497] + "..."
