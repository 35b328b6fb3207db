"""One simulated charging station, sans I/O: fed with frames and a clock, it says what to send.

The owner calls :meth:`SimStation.connected`, :meth:`~SimStation.receive` (a text frame) and
:meth:`~SimStation.tick` by :meth:`~SimStation.next_deadline`, with an explicit ``now`` (seconds
since the epoch), then writes :meth:`~SimStation.data_to_send`, closes the connection when
:attr:`~SimStation.want_close` and connects again at :attr:`~SimStation.connect_at`. What is
version-specific (the messages) is a :class:`Speaker` (:mod:`.v16`, :mod:`.v201`); the OCPP-J
framing, correlation, validation and timeouts are the CSMS's own RPC session, mirrored
(:func:`mirrored`): the station's calls are the CSMS's answers and the other way round.

Rules of the station:

* It sends one CALL at a time, in order (OCPP-J 1.6 4.1.1, 2.0.1 Part 4 4.1.1); a call's latency
  runs from its frame being handed over to its answer arriving. Transaction messages outlive a
  lost connection and are sent after the next one; other calls cut off by it are dropped.
* BootNotification first, after power-up or reset. Accepted: status of every connector, then
  Heartbeat at the interval given, then cars. Pending or Rejected: nothing else is sent and the
  boot is tried again after the interval given (how a CSMS paces a boot storm); the CSMS's own
  calls are answered meanwhile. After a mere reconnection it sends its connectors' statuses.
* Every CSMS-initiated call is answered by the speaker with a valid response of the version; the
  calls that follow from it (a transaction starting, a reboot) are sent after the answer.
* At random moments (``reconnect_per_h``, none in the first two minutes of a connection) the
  station drops its connection and comes back 2 to 15 s later.

Rules of a connector (:data:`TRANSITIONS`; a trigger its state does not list changes nothing):

* A car arrives after an idle time, is authorized with an id token and starts a transaction; it
  charges along its curve (:class:`.car.Car`) under the lowest of the connector's power and the
  charging profiles in force (:class:`.profiles.Profiles`), metered every ``meter_interval_s``.
* It is suspended by the EV when full and by the EVSE when the profiles allow less than 6 A on
  one phase; it leaves at its departure time, or is stopped remotely, by a reset or an unlock.
* After the car is unplugged, the connector is faulted for a while with ``fault_chance``.
* A refused authorization ends the attempt; a refused start stops the transaction at once.
* Entering a state sends its action first (Authorize, the start or stop), then the status when
  the wire status changed.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from chargegrid.protocols.ocppj.times import utc
from chargegrid.testing.simulator.car import Car, Rng
from chargegrid.testing.simulator.profiles import Profiles

#: A connection is not dropped on purpose within this long of being made.
_SETTLE_S = 120.0
#: Below this a car does not charge: 6 A on one phase (IEC 61851-1).
MIN_POWER_W = 6 * 230.0


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


class State(enum.Enum):
    """A connector's state (:data:`STATUS_16` names its OCPP 1.6 status)."""

    IDLE = "idle"
    RESERVED = "reserved"
    AUTHORIZING = "authorizing"
    STARTING = "starting"
    CHARGING = "charging"
    SUSPENDED_EV = "suspended_ev"
    SUSPENDED_EVSE = "suspended_evse"
    STOPPING = "stopping"
    FINISHING = "finishing"
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"


class Trigger(enum.Enum):
    ARRIVE = enum.auto()
    REMOTE_START = enum.auto()
    AUTH_OK = enum.auto()
    AUTH_REFUSED = enum.auto()
    START_OK = enum.auto()
    START_REFUSED = enum.auto()
    FULL = enum.auto()
    PAUSE = enum.auto()
    RESUME = enum.auto()
    LEAVE = enum.auto()  # departure, remote stop, reset, unlock: the reason says which
    STOPPED = enum.auto()
    UNPLUG = enum.auto()
    FAULT = enum.auto()
    REPAIR = enum.auto()
    INOPERATIVE = enum.auto()
    OPERATIVE = enum.auto()
    RESERVE = enum.auto()
    UNRESERVE = enum.auto()


S, T = State, Trigger
TRANSITIONS: dict[tuple[State, Trigger], State] = {
    (S.IDLE, T.ARRIVE): S.AUTHORIZING,
    (S.IDLE, T.REMOTE_START): S.STARTING,
    (S.IDLE, T.RESERVE): S.RESERVED,
    (S.IDLE, T.FAULT): S.FAULTED,
    (S.IDLE, T.INOPERATIVE): S.UNAVAILABLE,
    (S.RESERVED, T.ARRIVE): S.AUTHORIZING,
    (S.RESERVED, T.REMOTE_START): S.STARTING,
    (S.RESERVED, T.UNRESERVE): S.IDLE,
    (S.RESERVED, T.FAULT): S.FAULTED,
    (S.RESERVED, T.INOPERATIVE): S.UNAVAILABLE,
    (S.AUTHORIZING, T.AUTH_OK): S.STARTING,
    (S.AUTHORIZING, T.AUTH_REFUSED): S.FINISHING,
    (S.AUTHORIZING, T.LEAVE): S.FINISHING,
    (S.STARTING, T.START_OK): S.CHARGING,
    (S.STARTING, T.START_REFUSED): S.STOPPING,
    (S.CHARGING, T.FULL): S.SUSPENDED_EV,
    (S.CHARGING, T.PAUSE): S.SUSPENDED_EVSE,
    (S.CHARGING, T.LEAVE): S.STOPPING,
    (S.SUSPENDED_EV, T.LEAVE): S.STOPPING,
    (S.SUSPENDED_EVSE, T.RESUME): S.CHARGING,
    (S.SUSPENDED_EVSE, T.LEAVE): S.STOPPING,
    (S.STOPPING, T.STOPPED): S.FINISHING,
    (S.FINISHING, T.UNPLUG): S.IDLE,
    (S.FINISHING, T.FAULT): S.FAULTED,
    (S.FINISHING, T.INOPERATIVE): S.UNAVAILABLE,
    (S.FAULTED, T.REPAIR): S.IDLE,
    (S.FAULTED, T.INOPERATIVE): S.UNAVAILABLE,
    (S.UNAVAILABLE, T.OPERATIVE): S.IDLE,
}
STATUS_16: dict[State, str] = {
    S.IDLE: "Available",
    S.RESERVED: "Reserved",
    S.AUTHORIZING: "Preparing",
    S.STARTING: "Preparing",
    S.CHARGING: "Charging",
    S.SUSPENDED_EV: "SuspendedEV",
    S.SUSPENDED_EVSE: "SuspendedEVSE",
    S.STOPPING: "Finishing",
    S.FINISHING: "Finishing",
    S.FAULTED: "Faulted",
    S.UNAVAILABLE: "Unavailable",
}
IN_TRANSACTION = frozenset({S.STARTING, S.CHARGING, S.SUSPENDED_EV, S.SUSPENDED_EVSE, S.STOPPING})
_ACTIVE = frozenset({S.CHARGING, S.SUSPENDED_EV, S.SUSPENDED_EVSE})


@dataclass(frozen=True, slots=True)
class Params:
    """How one station behaves (the scenario's keys, :mod:`.scenario`). Times in s, power in W."""

    connectors: int = 1
    tokens: tuple[str, ...] = ("SIMTAG",)
    meter_interval_s: float = 10.0
    first_arrival_s: float = 20.0
    idle_s: tuple[float, float] = (60.0, 600.0)
    session_s: tuple[float, float] = (1200.0, 3600.0)
    max_power_w: float = 11_000.0
    fault_chance: float = 0.03
    fault_s: tuple[float, float] = (30.0, 300.0)
    reconnect_per_h: float = 0.1
    call_timeout_s: float = 30.0
    voltage: float = 230.0
    phases: int = 3
    vendor: str = "chargegrid"
    model: str = "Simulated AC"


@dataclass(slots=True)
class Connector:
    """One connector (1.6) or EVSE with its connector 1 (2.0.1)."""

    id: int
    state: State = State.IDLE
    sent_status: str | None = None
    due: float | None = None
    due_trigger: Trigger | None = None
    car: Car | None = None
    token: str | None = None
    tx_id: str | None = None
    tx_start: float | None = None
    seq_no: int = 0
    meter_wh: float = 0.0
    meter_start_wh: float = 0.0
    power_w: float = 0.0
    last_t: float = 0.0
    meter_at: float | None = None
    depart_at: float | None = None
    stop_reason: str = "EVDisconnected"
    remote_start_id: int | None = None
    reservation_id: int | None = None
    reserved_token: str | None = None
    inoperative_later: bool = False


class Recorder(Protocol):
    """Where a station reports what happens (the fleet's statistics)."""

    def answered(self, action: str, latency_s: float) -> None: ...
    def failed(self, action: str, reason: str) -> None: ...
    def served(self, action: str) -> None: ...
    def error(self, what: str) -> None: ...


Then = Callable[[msgspec.Struct | None, float], None]


class Speaker(Protocol):
    """The messages of one OCPP version (:mod:`.v16`, :mod:`.v201`)."""

    dialect: Dialect  # as seen from the station (:func:`mirrored`)
    transaction_actions: frozenset[str]

    def boot(self, st: SimStation) -> msgspec.Struct: ...
    def boot_result(self, response: msgspec.Struct) -> tuple[str, int]: ...
    def heartbeat(self) -> msgspec.Struct: ...
    def wire_status(self, c: Connector) -> str: ...
    def status(self, st: SimStation, c: Connector | None, now: float) -> msgspec.Struct | None: ...
    def charging_state(self, st: SimStation, c: Connector, now: float) -> msgspec.Struct | None: ...
    def authorize(self, token: str) -> msgspec.Struct: ...
    def authorized(self, response: msgspec.Struct) -> bool: ...
    def start(self, st: SimStation, c: Connector, now: float) -> msgspec.Struct: ...
    def started(self, c: Connector, response: msgspec.Struct) -> bool: ...
    def meter(self, st: SimStation, c: Connector, now: float, trigger: str) -> msgspec.Struct: ...
    def stop(self, st: SimStation, c: Connector, now: float) -> msgspec.Struct | None: ...
    def initial_config(self, st: SimStation) -> dict[str, str]: ...
    def answer(
        self, st: SimStation, action: str, request: msgspec.Struct, now: float
    ) -> msgspec.Struct: ...


@dataclass(slots=True)
class _Out:
    request: msgspec.Struct | None  # None: run ``then`` when every call before it is done
    then: Then | None
    action: str = ""


@dataclass(eq=False)
class SimStation:
    """A charging station's life; see the module's rules."""

    id: str
    speaker: Speaker
    params: Params
    rng: Rng
    recorder: Recorder
    connectors: list[Connector] = field(default_factory=list)
    profiles: Profiles = field(default_factory=Profiles)
    config: dict[str, str] = field(default_factory=dict)  # the speaker's keys or variables
    local_list_version: int = 0
    link: Link = Link.OFFLINE
    booted: bool = False
    boot_reason: str = "PowerUp"
    heartbeat_s: float = 300.0
    connect_at: float | None = 0.0
    want_close: bool = False
    winding_down: bool = False
    meter_interval_s: float = 0.0  # params.meter_interval_s until the CSMS changes it
    reset_when_idle: bool = False
    _session: RpcSession | None = None
    _queue: deque[_Out] = field(default_factory=deque)
    _inflight: tuple[int, _Out, float] | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _heartbeat_at: float | None = None
    _boot_at: float | None = None
    _glitch_at: float | None = None
    _planned: bool = False
    _failures: int = 0
    _dropping: bool = False

    def __post_init__(self) -> None:
        if not self.connectors:
            self.connectors = [Connector(i + 1) for i in range(self.params.connectors)]
        for c in self.connectors:
            c.meter_wh = c.meter_start_wh = self.rng.uniform(0, 5_000_000)
        self.profiles.voltage, self.profiles.phases = self.params.voltage, self.params.phases
        self.meter_interval_s = self.meter_interval_s or self.params.meter_interval_s
        self.config = self.config or self.speaker.initial_config(self)

    # --- the connection ----------------------------------------------------------------------

    def connected(self, now: float) -> None:
        """A WebSocket is open: boot, or tell the connectors' statuses after a reconnection."""
        self._session = RpcSession(
            self.speaker.dialect,
            call_timeout=self.params.call_timeout_s,
            new_id=lambda: str(next(self._ids)),
        )
        self.want_close = self._planned = False
        self.connect_at = None
        self._failures = 0
        if self.params.reconnect_per_h > 0:
            mean = 3600.0 / self.params.reconnect_per_h
            self._glitch_at = now + _SETTLE_S - math.log(1.0 - self.rng.random()) * mean
        if self.booted:
            self.link = Link.ACCEPTED
            self._heartbeat_at = now + self.heartbeat_s
            for c in self.connectors:
                c.sent_status = None
                self._send_status(c, now)
        else:
            self._boot(now)
        self._pump(now)

    def disconnected(self, now: float) -> None:
        """The WebSocket is gone; connect again later (soon if we closed it on purpose)."""
        if self._session is not None:
            self._dropping = True
            self._session.fail_all("connection lost")
            self._handle(self._session.events(), now)
            self._dropping = False
        self._session = None
        self.link = Link.OFFLINE
        self.want_close = False
        if not self._planned:
            self.connect_failed(now)

    def connect_failed(self, now: float) -> None:
        """No connection: try again after 1, 2, 4... s (at most 60), with jitter."""
        self._failures += 1
        delay = min(60.0, 2.0 ** min(self._failures - 1, 6))
        self.connect_at = now + delay * self.rng.uniform(0.5, 1.0)

    def _close(self, now: float, reconnect_after: float) -> None:
        self.want_close = self._planned = True
        self.connect_at = now + reconnect_after

    # --- input -------------------------------------------------------------------------------

    def receive(self, text: bytes | str, now: float) -> None:
        """One text frame from the CSMS."""
        if self._session is None:
            return
        self._session.receive(text, now)
        self._handle(self._session.events(), now)
        self._pump(now)

    def tick(self, now: float) -> None:
        """Run what is due at ``now``: timeouts, heartbeats, boot retries, cars, meters."""
        session = self._session
        if session is None:
            return
        session.tick(now)
        self._handle(session.events(), now)
        if self._boot_at is not None and now >= self._boot_at and self.link is Link.PENDING:
            self._boot_at = None
            self._boot(now)
        if self.link is Link.ACCEPTED:
            if self._heartbeat_at is not None and now >= self._heartbeat_at:
                self._heartbeat_at = now + self.heartbeat_s
                self.send(self.speaker.heartbeat())
            for c in self.connectors:
                self._tick_connector(c, now)
            if self._glitch_at is not None and now >= self._glitch_at and not self.winding_down:
                self._glitch_at = None
                self._close(now, self.rng.uniform(2.0, 15.0))
        self._pump(now)

    def _tick_connector(self, c: Connector, now: float) -> None:
        if c.meter_at is not None and now >= c.meter_at and c.state in _ACTIVE:
            c.meter_at = now + self.meter_interval_s
            self._meter(c, now, "periodic")
        if c.depart_at is not None and now >= c.depart_at and c.state in _ACTIVE:
            c.depart_at = None
            c.stop_reason = "EVDisconnected"
            self.fire(c, Trigger.LEAVE, now)
        if c.due is not None and now >= c.due:
            trigger, c.due, c.due_trigger = c.due_trigger, None, None
            if trigger is Trigger.UNPLUG:
                if c.inoperative_later:
                    trigger = Trigger.INOPERATIVE
                elif self.rng.chance(self.params.fault_chance):
                    trigger = Trigger.FAULT
            if trigger is not None:
                self.fire(c, trigger, now)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (None: nothing until input)."""
        if self._session is None:
            return None
        times = [self._session.next_deadline(), self._boot_at]
        if self.link is Link.ACCEPTED:
            times += [self._heartbeat_at, self._glitch_at]
            for c in self.connectors:
                times += [c.due, c.meter_at, c.depart_at]
        found = [t for t in times if t is not None]
        return min(found) if found else None

    # --- output ------------------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        return self._session.data_to_send() if self._session is not None else []

    @property
    def busy(self) -> bool:
        """Calls are queued or waiting for their answer."""
        return bool(self._queue) or self._inflight is not None

    # --- calls -------------------------------------------------------------------------------

    def send(self, request: msgspec.Struct | None, then: Then | None = None) -> None:
        """Queue a call (``None``: run ``then`` once every earlier call is done)."""
        action = self.speaker.dialect.action_of[type(request)] if request is not None else ""
        self._queue.append(_Out(request, then, action))

    def _pump(self, now: float) -> None:
        session = self._session
        while session is not None and self._inflight is None and self._queue:
            out = self._queue[0]
            if self.link is not Link.ACCEPTED and out.action not in ("", "BootNotification"):
                return
            self._queue.popleft()
            if out.request is None:
                if out.then is not None:
                    out.then(None, now)
                session = self._session
                continue
            try:
                handle = session.call(out.request, now)
            except OcppError as exc:  # our own message fails its schema: a bug of ours
                self.recorder.error(f"invalid {out.action}: {exc.description}")
                if out.then is not None:
                    out.then(None, now)
                continue
            self._inflight = (handle, out, now)

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
        if self._dropping and out.action in self.speaker.transaction_actions:
            self._queue.appendleft(out)  # sent again on the next connection
            return
        reason = event.error_code or ("timeout" if event.timed_out else event.error.description)
        self.recorder.failed(out.action, reason)
        if out.then is not None:
            out.then(None, now)

    def _serve(self, event: CallReceived, now: float) -> None:
        # What the answer sets off is only queued here, and sent by _pump after the answer.
        assert self._session is not None
        try:
            response = self.speaker.answer(self, event.action, event.request, now)
        except OcppError as exc:
            self._session.reply_error(event.unique_id, exc)
        else:
            self._session.reply(event.unique_id, response)
        self.recorder.served(event.action)

    # --- boot and heartbeat ------------------------------------------------------------------

    def _boot(self, now: float) -> None:
        """BootNotification, ahead of what waits from before a reset."""
        self.link = Link.BOOTING
        request = self.speaker.boot(self)
        self._queue.appendleft(_Out(request, self._booted, "BootNotification"))

    def _booted(self, response: msgspec.Struct | None, now: float) -> None:
        if self._session is None:
            return
        if response is None:
            self.link, self._boot_at = Link.PENDING, now + 30.0
            return
        status, interval = self.speaker.boot_result(response)
        if status != "Accepted":
            self.link = Link.PENDING
            self._boot_at = now + (interval if interval > 0 else 60.0)
            return
        self.link, self.booted = Link.ACCEPTED, True
        if interval > 0:
            self.heartbeat_s = float(interval)
        self._heartbeat_at = now + self.heartbeat_s
        self._send_status(None, now)
        for c in self.connectors:
            c.sent_status = None
            self._send_status(c, now)
            if c.state is State.IDLE and c.due is None and not self.winding_down:
                self._due(c, now + self.rng.uniform(0, self.params.first_arrival_s), T.ARRIVE)

    # --- connectors --------------------------------------------------------------------------

    def connector(self, connector_id: int) -> Connector | None:
        return next((c for c in self.connectors if c.id == connector_id), None)

    def transaction(self, tx_id: str) -> Connector | None:
        return next(
            (c for c in self.connectors if c.tx_id == tx_id and c.state in IN_TRANSACTION), None
        )

    def _due(self, c: Connector, at: float, trigger: Trigger) -> None:
        c.due, c.due_trigger = at, trigger

    def fire(self, c: Connector, trigger: Trigger, now: float) -> bool:
        """Apply ``trigger`` to ``c`` by :data:`TRANSITIONS`; False if its state ignores it."""
        target = TRANSITIONS.get((c.state, trigger))
        if target is None:
            return False
        before, c.state = c.state, target
        c.due = c.due_trigger = None
        getattr(self, f"_enter_{target.value}")(c, now)
        if before in _ACTIVE and target in _ACTIVE and self.link is Link.ACCEPTED:
            request = self.speaker.charging_state(self, c, now)
            if request is not None:
                self.send(request)
        self._send_status(c, now)
        return True

    def _send_status(self, c: Connector | None, now: float) -> None:
        """The status of ``c`` (None: the station, where the version has one) if it changed
        since last sent; while not accepted, it goes with the next boot or reconnection."""
        if self.link is not Link.ACCEPTED:
            return
        if c is not None:
            wire = self.speaker.wire_status(c)
            if c.sent_status == wire:
                return
            c.sent_status = wire
        request = self.speaker.status(self, c, now)
        if request is not None:
            self.send(request)

    def _enter_idle(self, c: Connector, now: float) -> None:
        c.car = c.token = c.tx_id = c.tx_start = None
        c.power_w = 0.0
        c.remote_start_id = c.reservation_id = c.reserved_token = None
        if self.reset_when_idle and not any(x.state in IN_TRANSACTION for x in self.connectors):
            self.reset(now, "RemoteReset")
        elif not self.winding_down:
            self._due(c, now + self.rng.uniform(*self.params.idle_s), T.ARRIVE)

    def _enter_reserved(self, c: Connector, now: float) -> None:
        pass  # the reservation's expiry is set by reserve()

    def _enter_authorizing(self, c: Connector, now: float) -> None:
        c.car = Car.arriving(self.rng, self.params.max_power_w)
        c.token = c.reserved_token or self.rng.pick(self.params.tokens)

        def answered(response: msgspec.Struct | None, at: float) -> None:
            ok = response is not None and self.speaker.authorized(response)
            self.fire(c, Trigger.AUTH_OK if ok else Trigger.AUTH_REFUSED, at)

        self.send(self.speaker.authorize(c.token), answered)

    def _enter_starting(self, c: Connector, now: float) -> None:
        if c.car is None:
            c.car = Car.arriving(self.rng, self.params.max_power_w)
        c.tx_start = c.last_t = now
        c.meter_start_wh = c.meter_wh
        c.seq_no = 0
        c.stop_reason = "EVDisconnected"

        def answered(response: msgspec.Struct | None, at: float) -> None:
            ok = response is not None and self.speaker.started(c, response)
            if not ok:
                c.stop_reason = "DeAuthorized"
            self.fire(c, Trigger.START_OK if ok else Trigger.START_REFUSED, at)

        self.send(self.speaker.start(self, c, now), answered)

    def _enter_charging(self, c: Connector, now: float) -> None:
        if c.depart_at is None:
            c.depart_at = now + self.rng.uniform(*self.params.session_s)
        if c.meter_at is None:
            c.meter_at = now + self.meter_interval_s
        c.power_w = c.car.power_w(self.limit_w(c, now)) if c.car else 0.0

    def _enter_suspended_ev(self, c: Connector, now: float) -> None:
        c.power_w = 0.0

    def _enter_suspended_evse(self, c: Connector, now: float) -> None:
        c.power_w = 0.0

    def _enter_stopping(self, c: Connector, now: float) -> None:
        self._integrate(c, now)
        c.power_w = 0.0
        c.meter_at = c.depart_at = None
        request = self.speaker.stop(self, c, now)
        if c.tx_id is not None:
            self.profiles.end_transaction(c.tx_id)

        def stopped(response: msgspec.Struct | None, at: float) -> None:
            self.fire(c, Trigger.STOPPED, at)

        self.send(request, stopped)

    def _enter_finishing(self, c: Connector, now: float) -> None:
        c.power_w = 0.0
        self._due(c, now + self.rng.uniform(5.0, 20.0), T.UNPLUG)

    def _enter_faulted(self, c: Connector, now: float) -> None:
        c.car = None
        self._due(c, now + self.rng.uniform(*self.params.fault_s), T.REPAIR)

    def _enter_unavailable(self, c: Connector, now: float) -> None:
        c.car, c.inoperative_later = None, False

    # --- metering ----------------------------------------------------------------------------

    def limit_w(self, c: Connector, now: float) -> float:
        return min(self.params.max_power_w, self.profiles.limit_w(c.id, now, c.tx_start))

    def _integrate(self, c: Connector, now: float) -> None:
        if c.car is not None and c.state in _ACTIVE and now > c.last_t:
            paused = c.state is not State.CHARGING
            limit = 0.0 if paused else self.limit_w(c, c.last_t)
            c.meter_wh += c.car.charge(now - c.last_t, limit)
        c.last_t = now

    def _meter(self, c: Connector, now: float, trigger: str) -> None:
        """Bring the meter to ``now``, send it, then follow the car and the limit."""
        self._integrate(c, now)
        limit = self.limit_w(c, now)
        car = c.car
        c.power_w = car.power_w(limit) if car is not None and c.state is State.CHARGING else 0.0
        self.send(self.speaker.meter(self, c, now, trigger))
        self.follow_limit(c, now)

    def follow_limit(self, c: Connector, now: float) -> None:
        """Suspend or resume as the car and the profiles say."""
        if c.car is None:
            return
        limit = self.limit_w(c, now)
        if c.state is State.CHARGING and c.car.full:
            self.fire(c, Trigger.FULL, now)
        elif c.state is State.CHARGING and limit < MIN_POWER_W:
            self.fire(c, Trigger.PAUSE, now)
        elif c.state is State.SUSPENDED_EVSE and limit >= MIN_POWER_W:
            self.fire(c, Trigger.RESUME, now)
        if c.state is State.CHARGING:
            c.power_w = c.car.power_w(limit)

    def profiles_changed(self, now: float) -> None:
        """Profiles were installed or cleared: meter up to now under the old limits first."""
        for c in self.connectors:
            if c.state in _ACTIVE:
                self.follow_limit(c, now)

    def before_profiles_change(self, now: float) -> None:
        for c in self.connectors:
            self._integrate(c, now)

    def send_meter_now(self, c: Connector, now: float) -> None:
        if c.state in _ACTIVE:
            self._meter(c, now, "trigger")

    def resend_status(self, c: Connector | None, now: float) -> None:
        if c is not None:
            c.sent_status = None
        self._send_status(c, now)

    # --- what the CSMS asks (called by the speakers) -----------------------------------------

    def remote_start(
        self, connector_id: int | None, token: str, remote_id: int | None, now: float
    ) -> bool:
        """Start a transaction for ``token`` on that connector (any free one when None)."""
        candidates = [
            c
            for c in self.connectors
            if (connector_id is None or c.id == connector_id)
            and (c.state is State.IDLE or (c.state is State.RESERVED and c.reserved_token == token))
        ]
        if not candidates or self.winding_down:
            return False
        c = candidates[0]
        c.token, c.remote_start_id = token, remote_id
        return self.fire(c, Trigger.REMOTE_START, now)

    def remote_stop(self, tx_id: str, now: float) -> bool:
        c = self.transaction(tx_id)
        if c is None or c.state not in _ACTIVE:
            return False
        c.stop_reason = "Remote"
        return self.fire(c, Trigger.LEAVE, now)

    def set_heartbeat(self, seconds: float, now: float) -> None:
        self.heartbeat_s = seconds
        if self._heartbeat_at is not None:
            self._heartbeat_at = now + seconds

    def queued(self, actions: frozenset[str]) -> bool:
        """Whether calls of ``actions`` wait to be sent or answered."""
        inflight = self._inflight is not None and self._inflight[1].action in actions
        return inflight or any(out.action in actions for out in self._queue)

    def reset(self, now: float, boot_reason: str, stop_reason: str = "SoftReset") -> None:
        """Stop every transaction, then reboot once those stops are sent."""
        self.reset_when_idle = False
        for c in self.connectors:
            if c.state in _ACTIVE:
                c.stop_reason = stop_reason
                self.fire(c, Trigger.LEAVE, now)
        self.send(None, lambda _, at: self._reboot(at, boot_reason))

    def _reboot(self, now: float, reason: str) -> None:
        self.booted, self.boot_reason = False, reason
        self.link = Link.OFFLINE
        for c in self.connectors:
            if c.state is not State.UNAVAILABLE:
                c.state = State.IDLE
            c.due = c.due_trigger = c.meter_at = c.depart_at = None
            c.car = c.token = c.tx_id = c.tx_start = None
            c.power_w = 0.0
        self.profiles.clear(purpose="tx")
        self._close(now, self.rng.uniform(2.0, 6.0))

    def availability(self, connector_id: int, operative: bool, now: float) -> str:
        """ChangeAvailability: Accepted, Scheduled (after the session) or Rejected."""
        chosen = [c for c in self.connectors if connector_id in (0, c.id)]
        if not chosen:
            return "Rejected"
        scheduled = False
        for c in chosen:
            if operative:
                c.inoperative_later = False
                self.fire(c, Trigger.OPERATIVE, now)
            elif not self.fire(c, Trigger.INOPERATIVE, now) and c.state is not State.UNAVAILABLE:
                c.inoperative_later = scheduled = True
        return "Scheduled" if scheduled else "Accepted"

    def unlock(self, connector_id: int, now: float) -> bool:
        c = self.connector(connector_id)
        if c is None:
            return False
        if c.state in _ACTIVE:
            c.stop_reason = "UnlockCommand"
            self.fire(c, Trigger.LEAVE, now)
        return True

    def reserve(
        self, connector_id: int | None, token: str, reservation_id: int, expires: float, now: float
    ) -> str:
        """ReserveNow: Accepted, Occupied, Faulted, Unavailable or Rejected."""
        pool = [c for c in self.connectors if connector_id in (None, 0, c.id)]
        if not pool:
            return "Rejected"
        free = [c for c in pool if c.state is State.IDLE]
        if not free:
            states = {c.state for c in pool}
            if State.FAULTED in states:
                return "Faulted"
            return "Unavailable" if states == {State.UNAVAILABLE} else "Occupied"
        c = free[0]
        self.fire(c, Trigger.RESERVE, now)
        c.reservation_id, c.reserved_token = reservation_id, token
        self._due(c, expires, T.UNRESERVE)
        return "Accepted"

    def cancel_reservation(self, reservation_id: int, now: float) -> bool:
        for c in self.connectors:
            if c.state is State.RESERVED and c.reservation_id == reservation_id:
                return self.fire(c, Trigger.UNRESERVE, now)
        return False

    def wind_down(self, now: float) -> None:
        """The fleet stops: no new cars; end every session (reason Local)."""
        self.winding_down = True
        for c in self.connectors:
            if c.state in (State.IDLE, State.RESERVED, State.FAULTED):
                c.due = c.due_trigger = None
            if c.state in _ACTIVE:
                c.stop_reason = "Local"
                self.fire(c, Trigger.LEAVE, now)
        self._pump(now)

    # --- what the fleet shows ----------------------------------------------------------------

    @property
    def charging(self) -> int:
        """Connectors in a transaction now."""
        return sum(1 for c in self.connectors if c.state in _ACTIVE)

    @property
    def power_w(self) -> float:
        return sum(c.power_w for c in self.connectors)

    def composite(
        self, connector_id: int, duration_s: float, unit: str, now: float
    ) -> list[tuple[int, float]]:
        """GetCompositeSchedule: (offset s, limit in ``unit``) from now, where it changes."""
        c = self.connector(connector_id)
        ceiling = self.params.max_power_w * (len(self.connectors) if c is None else 1)
        tx_start = c.tx_start if c is not None else None
        per_amp = self.params.voltage * self.params.phases
        out: list[tuple[int, float]] = []
        for offset, watts in self.profiles.composite(
            connector_id, now, duration_s, tx_start, ceiling
        ):
            limit = round(watts if unit == "W" else watts / per_amp, 1)
            if not out or out[-1][1] != limit:
                out.append((int(offset), limit))
        return out


def wall(now: float) -> datetime:
    """``now`` (seconds since the epoch) as an aware UTC time, to the millisecond."""
    return datetime.fromtimestamp(round(now, 3), UTC)


def epoch(value: datetime | None) -> float | None:
    return None if value is None else utc(value).timestamp()
