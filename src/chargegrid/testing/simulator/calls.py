"""A simulated station's side of the RPC: its calls to the CSMS, their answers, the CSMS's calls.

The OCPP-J framing, correlation, validation and timeouts are the CSMS's own RPC session, mirrored
(:func:`mirrored`): the station's calls are the CSMS's answers and the other way round. One
session per connection; :class:`Calls` keeps what outlives it.

Rules of the calls:

* The station sends one CALL at a time, in order (OCPP-J 1.6 4.1.1, 2.0.1 Part 4 4.1.1); a call's
  latency runs from its frame being handed over to its answer arriving.
* Until the boot is accepted only BootNotification is sent; the rest waits, in order.
* Transaction messages outlive a lost connection and are sent after the next one; other calls
  cut off by it are dropped.
* A call's ``then`` runs with the response, or with None when there is none: a CALLERROR, a
  timeout, a lost connection, an invalid result.
* A call answered with a CALLERROR is recorded as such (by action and error code), apart from
  the calls answered with a CALLRESULT (``answered``, with their latency) and from the calls that
  got no answer (``failed``: a timeout, a lost connection, an invalid result).
* The CSMS's calls are answered by the station (``answer``), with a CALLERROR if it raises.
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from chargegrid.protocols.ocppj.dialect import Dialect
from chargegrid.protocols.ocppj.errors import OcppError
from chargegrid.protocols.ocppj.session import (
    CallAnswered,
    CallFailed,
    CallReceived,
    InputRejected,
    LateReplyDropped,
    OutboundInvalid,
    RpcSession,
)


def mirrored(dialect: Dialect) -> Dialect:
    """``dialect`` seen from the station: what the CSMS sends is what arrives."""
    return Dialect(
        version=dialect.version,
        subprotocol=dialect.subprotocol,
        actions=dialect.actions,
        station_actions=dialect.csms_actions,
        error_codes=dialect.error_codes,
    )


class Link(enum.Enum):
    OFFLINE = "offline"
    BOOTING = "booting"  # BootNotification sent, no answer yet
    PENDING = "pending"  # Pending or Rejected: the boot is tried again at the interval
    ACCEPTED = "accepted"


class Recorder(Protocol):
    """Where a station reports what happens (the fleet's statistics)."""

    def answered(self, action: str, latency_s: float) -> None: ...
    def call_error(self, action: str, code: str) -> None: ...
    def failed(self, action: str, reason: str) -> None: ...
    def served(self, action: str) -> None: ...
    def error(self, what: str) -> None: ...


Then = Callable[[msgspec.Struct | None, float], None]
#: The station's answer to a CSMS call (action, request, now); an OcppError becomes a CALLERROR.
Answer = Callable[[str, msgspec.Struct, float], msgspec.Struct]


@dataclass(slots=True)
class _Out:
    request: msgspec.Struct | None  # None: run ``then`` when every call before it is done
    then: Then | None
    action: str = ""


@dataclass(eq=False)
class Calls:
    """The station's calls, queued and sent one at a time over the current connection's session.

    ``accepted`` tells whether the boot is accepted (until then only BootNotification goes out);
    ``kept`` are the actions that outlive a lost connection.
    """

    dialect: Dialect  # as seen from the station (:func:`mirrored`)
    recorder: Recorder
    answer: Answer
    accepted: Callable[[], bool]
    kept: frozenset[str]
    call_timeout_s: float
    session: RpcSession | None = None
    _queue: deque[_Out] = field(default_factory=deque)
    _inflight: tuple[int, _Out, float] | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _dropping: bool = False

    # --- the connection ----------------------------------------------------------------------

    def open(self) -> None:
        """A connection is made: a fresh session (unique ids go on from the last one)."""
        self.session = RpcSession(
            self.dialect, call_timeout=self.call_timeout_s, new_id=lambda: str(next(self._ids))
        )

    def lost(self, now: float) -> None:
        """The connection is gone: fail what is in flight (keeping transaction messages)."""
        if self.session is not None:
            self._dropping = True
            self.session.fail_all("connection lost")
            self._handle(self.session.events(), now)
            self._dropping = False
        self.session = None

    def receive(self, text: bytes | str, now: float) -> None:
        """One text frame from the CSMS (the caller checked there is a session)."""
        assert self.session is not None
        self.session.receive(text, now)
        self._handle(self.session.events(), now)

    def tick(self, now: float) -> None:
        """Time out the call in flight if its time has come (the caller checked the session)."""
        assert self.session is not None
        self.session.tick(now)
        self._handle(self.session.events(), now)

    def next_deadline(self) -> float | None:
        return self.session.next_deadline() if self.session is not None else None

    def data_to_send(self) -> list[bytes]:
        return self.session.data_to_send() if self.session is not None else []

    # --- queueing ----------------------------------------------------------------------------

    def send(self, request: msgspec.Struct | None, then: Then | None = None) -> None:
        """Queue a call (``None``: run ``then`` once every earlier call is done)."""
        action = self.dialect.action_of[type(request)] if request is not None else ""
        self._queue.append(_Out(request, then, action))

    def send_first(self, request: msgspec.Struct, then: Then) -> None:
        """Queue a call ahead of every other (the boot, ahead of what waits from before)."""
        self._queue.appendleft(_Out(request, then, self.dialect.action_of[type(request)]))

    @property
    def busy(self) -> bool:
        """Calls are queued or waiting for their answer."""
        return bool(self._queue) or self._inflight is not None

    def queued(self, actions: frozenset[str]) -> bool:
        """Whether calls of ``actions`` wait to be sent or answered."""
        inflight = self._inflight is not None and self._inflight[1].action in actions
        return inflight or any(out.action in actions for out in self._queue)

    def pump(self, now: float) -> None:
        """Hand the next calls to the session, as far as the one-at-a-time rule lets."""
        session = self.session
        while session is not None and self._inflight is None and self._queue:
            out = self._queue[0]
            if not self.accepted() and out.action not in ("", "BootNotification"):
                return
            self._queue.popleft()
            if out.request is None:
                if out.then is not None:
                    out.then(None, now)
                session = self.session
                continue
            try:
                handle = session.call(out.request, now)
            except OcppError as exc:  # our own message fails its schema: a bug of ours
                self.recorder.error(f"invalid {out.action}: {exc.description}")
                if out.then is not None:
                    out.then(None, now)
                continue
            self._inflight = (handle, out, now)

    # --- events ------------------------------------------------------------------------------

    def _handle(self, events: Sequence[object], now: float) -> None:
        for event in events:
            if isinstance(event, CallReceived):
                self._serve(event, now)
            elif isinstance(event, CallAnswered | CallFailed):
                self._answered(event, now)
            elif isinstance(event, InputRejected):
                self.recorder.error(f"CSMS sent bad input: {event.code}")
            elif isinstance(event, OutboundInvalid):
                self.recorder.error(f"invalid answer to {event.action}: {event.error}")
            elif isinstance(event, LateReplyDropped):
                self.recorder.error("late reply dropped")

    def _answered(self, event: CallAnswered | CallFailed, now: float) -> None:
        if self._inflight is None or self._inflight[0] != event.handle:
            return
        _, out, sent_at = self._inflight
        self._inflight = None
        if isinstance(event, CallAnswered):
            self.recorder.answered(out.action, now - sent_at)
            if out.then is not None:
                out.then(event.response, now)
            return
        if self._dropping and out.action in self.kept:
            self._queue.appendleft(out)  # sent again on the next connection
            return
        if event.error_code:  # the CSMS answered, with a CALLERROR
            self.recorder.call_error(out.action, event.error_code)
        else:
            self.recorder.failed(
                out.action, "timeout" if event.timed_out else event.error.description
            )
        if out.then is not None:
            out.then(None, now)

    def _serve(self, event: CallReceived, now: float) -> None:
        # What the answer sets off is only queued here, and sent by pump() after the answer.
        assert self.session is not None
        try:
            response = self.answer(event.action, event.request, now)
        except OcppError as exc:
            self.session.reply_error(event.unique_id, exc)
        else:
            self.session.reply(event.unique_id, response)
        self.recorder.served(event.action)
