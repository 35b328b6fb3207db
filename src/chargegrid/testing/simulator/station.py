"""One simulated charging station, sans I/O: fed with frames and a clock, it says what to send.

The owner calls :meth:`SimStation.connected`, :meth:`~SimStation.receive` (a text frame) and
:meth:`~SimStation.tick` by :meth:`~SimStation.next_deadline`, with an explicit ``now`` (seconds
since the epoch), then writes :meth:`~SimStation.data_to_send`, closes the connection when
:attr:`~SimStation.want_close` and connects again at :attr:`~SimStation.connect_at`. What is
version-specific (the messages) is a :class:`Speaker` (:mod:`.v16`, :mod:`.v201`).

A station is made of parts, each a module with its rules: its calls and the CSMS's over the RPC
session (:mod:`.calls`), its connectors' state machine (:mod:`.connector`) and what they do in
each state (:mod:`.life`), and the CSMS-initiated operations (:mod:`.operations`). This module
holds the station's own life.

Rules of the station:

* BootNotification first, after power-up or reset. Accepted: status of every connector, then
  Heartbeat at the interval given, then cars. Pending or Rejected: nothing else is sent and the
  boot is tried again after the interval given (how a CSMS paces a boot storm); the CSMS's own
  calls are answered meanwhile. After a mere reconnection it sends its connectors' statuses.
* Every CSMS-initiated call is answered by the speaker with a valid response of the version; the
  calls that follow from it (a transaction starting, a reboot) are sent after the answer.
* At random moments (``reconnect_per_h``, none in the first two minutes of a connection) the
  station drops its connection and comes back 2 to 15 s later.
* When the fleet winds down, no car arrives any more and every session ends (reason Local).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import msgspec

from chargegrid.protocols.ocppj.dialect import Dialect
from chargegrid.protocols.ocppj.times import utc
from chargegrid.testing.simulator.calls import Calls, Link, Recorder, Then, mirrored
from chargegrid.testing.simulator.car import Rng
from chargegrid.testing.simulator.connector import (
    ACTIVE,
    IN_TRANSACTION,
    MIN_POWER_W,
    STATUS_16,
    TRANSITIONS,
    Connector,
    State,
    Trigger,
)
from chargegrid.testing.simulator.operations import Operations
from chargegrid.testing.simulator.profiles import Profiles

__all__ = [  # what other modules import from here, some of it defined in the parts
    "IN_TRANSACTION",
    "MIN_POWER_W",
    "STATUS_16",
    "TRANSITIONS",
    "Connector",
    "Link",
    "Params",
    "Recorder",
    "SimStation",
    "Speaker",
    "State",
    "Then",
    "Trigger",
    "epoch",
    "mirrored",
    "wall",
]

#: A connection is not dropped on purpose within this long of being made.
_SETTLE_S = 120.0


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


@dataclass(eq=False)
class SimStation(Operations):
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
    calls: Calls = field(init=False, repr=False)
    _heartbeat_at: float | None = None
    _boot_at: float | None = None
    _glitch_at: float | None = None
    _planned: bool = False
    _failures: int = 0

    def __post_init__(self) -> None:
        self.calls = Calls(
            self.speaker.dialect,
            self.recorder,
            answer=lambda action, request, now: self.speaker.answer(self, action, request, now),
            accepted=lambda: self.link is Link.ACCEPTED,
            kept=self.speaker.transaction_actions,
            call_timeout_s=self.params.call_timeout_s,
        )
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
        self.calls.open()
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
        self.calls.pump(now)

    def disconnected(self, now: float) -> None:
        """The WebSocket is gone; connect again later (soon if we closed it on purpose)."""
        self.calls.lost(now)
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
        if self.calls.session is None:
            return
        self.calls.receive(text, now)
        self.calls.pump(now)

    def tick(self, now: float) -> None:
        """Run what is due at ``now``: timeouts, heartbeats, boot retries, cars, meters."""
        if self.calls.session is None:
            return
        self.calls.tick(now)
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
        self.calls.pump(now)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (None: nothing until input)."""
        if self.calls.session is None:
            return None
        times = [self.calls.next_deadline(), self._boot_at]
        if self.link is Link.ACCEPTED:
            times += [self._heartbeat_at, self._glitch_at]
            for c in self.connectors:
                times += [c.due, c.meter_at, c.depart_at]
        found = [t for t in times if t is not None]
        return min(found) if found else None

    # --- output ------------------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        return self.calls.data_to_send()

    @property
    def busy(self) -> bool:
        """Calls are queued or waiting for their answer."""
        return self.calls.busy

    def send(self, request: msgspec.Struct | None, then: Then | None = None) -> None:
        """Queue a call (``None``: run ``then`` once every earlier call is done)."""
        self.calls.send(request, then)

    # --- boot and heartbeat ------------------------------------------------------------------

    def _boot(self, now: float) -> None:
        """BootNotification, ahead of what waits from before a reset."""
        self.link = Link.BOOTING
        self.calls.send_first(self.speaker.boot(self), self._booted)

    def _booted(self, response: msgspec.Struct | None, now: float) -> None:
        if self.calls.session is None:
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
                self._due(c, now + self.rng.uniform(0, self.params.first_arrival_s), Trigger.ARRIVE)

    # --- the fleet ---------------------------------------------------------------------------

    def wind_down(self, now: float) -> None:
        """The fleet stops: no new cars; end every session (reason Local)."""
        self.winding_down = True
        for c in self.connectors:
            if c.state in (State.IDLE, State.RESERVED, State.FAULTED):
                c.due = c.due_trigger = None
            if c.state in ACTIVE:
                c.stop_reason = "Local"
                self.fire(c, Trigger.LEAVE, now)
        self.calls.pump(now)

    @property
    def charging(self) -> int:
        """Connectors in a transaction now."""
        return sum(1 for c in self.connectors if c.state in ACTIVE)

    @property
    def power_w(self) -> float:
        return sum(c.power_w for c in self.connectors)


def wall(now: float) -> datetime:
    """``now`` (seconds since the epoch) as an aware UTC time, to the millisecond."""
    return datetime.fromtimestamp(round(now, 3), UTC)


def epoch(value: datetime | None) -> float | None:
    return None if value is None else utc(value).timestamp()
