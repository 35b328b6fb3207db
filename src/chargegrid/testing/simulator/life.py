"""What a simulated connector does on entering each state of :data:`.connector.TRANSITIONS`, and
its meter.

The rules of a connector are :mod:`.connector`'s. The meter integrates the car's power over time
(:meth:`.car.Car.charge`) under the limit in force when each interval began; it is read out every
``meter_interval_s`` while a car is plugged in and a transaction runs, and on request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import msgspec

from chargegrid.testing.simulator.calls import Link, Then
from chargegrid.testing.simulator.car import Car, Rng
from chargegrid.testing.simulator.connector import (
    ACTIVE,
    IN_TRANSACTION,
    MIN_POWER_W,
    TRANSITIONS,
    Connector,
    State,
    Trigger,
)
from chargegrid.testing.simulator.profiles import Profiles

if TYPE_CHECKING:
    from chargegrid.testing.simulator.station import Params, SimStation, Speaker


class ConnectorLife:
    """The connectors of a :class:`~.station.SimStation` (a part of it, not used alone)."""

    # Of the station:
    speaker: Speaker
    params: Params
    rng: Rng
    connectors: list[Connector]
    profiles: Profiles
    link: Link
    meter_interval_s: float
    reset_when_idle: bool
    winding_down: bool

    if TYPE_CHECKING:

        def send(self, request: msgspec.Struct | None, then: Then | None = None) -> None: ...
        def reset(self, now: float, boot_reason: str, stop_reason: str = "SoftReset") -> None: ...

    @property
    def _st(self) -> SimStation:
        """The whole station, as the speakers take it."""
        return cast("SimStation", self)

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
        if before in ACTIVE and target in ACTIVE and self.link is Link.ACCEPTED:
            request = self.speaker.charging_state(self._st, c, now)
            if request is not None:
                self.send(request)
        self._send_status(c, now)
        return True

    def _tick_connector(self, c: Connector, now: float) -> None:
        if c.meter_at is not None and now >= c.meter_at and c.state in ACTIVE:
            c.meter_at = now + self.meter_interval_s
            self._meter(c, now, "periodic")
        if c.depart_at is not None and now >= c.depart_at and c.state in ACTIVE:
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
        request = self.speaker.status(self._st, c, now)
        if request is not None:
            self.send(request)

    # --- entering a state --------------------------------------------------------------------

    def _enter_idle(self, c: Connector, now: float) -> None:
        c.car = c.token = c.tx_id = c.tx_start = None
        c.power_w = 0.0
        c.remote_start_id = c.reservation_id = c.reserved_token = None
        if self.reset_when_idle and not any(x.state in IN_TRANSACTION for x in self.connectors):
            self.reset(now, "RemoteReset")
        elif not self.winding_down:
            self._due(c, now + self.rng.uniform(*self.params.idle_s), Trigger.ARRIVE)

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

        self.send(self.speaker.start(self._st, c, now), answered)

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
        request = self.speaker.stop(self._st, c, now)
        if c.tx_id is not None:
            self.profiles.end_transaction(c.tx_id)

        def stopped(response: msgspec.Struct | None, at: float) -> None:
            self.fire(c, Trigger.STOPPED, at)

        self.send(request, stopped)

    def _enter_finishing(self, c: Connector, now: float) -> None:
        c.power_w = 0.0
        self._due(c, now + self.rng.uniform(5.0, 20.0), Trigger.UNPLUG)

    def _enter_faulted(self, c: Connector, now: float) -> None:
        c.car = None
        self._due(c, now + self.rng.uniform(*self.params.fault_s), Trigger.REPAIR)

    def _enter_unavailable(self, c: Connector, now: float) -> None:
        c.car, c.inoperative_later = None, False

    # --- metering ----------------------------------------------------------------------------

    def limit_w(self, c: Connector, now: float) -> float:
        return min(self.params.max_power_w, self.profiles.limit_w(c.id, now, c.tx_start))

    def _integrate(self, c: Connector, now: float) -> None:
        if c.car is not None and c.state in ACTIVE and now > c.last_t:
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
        self.send(self.speaker.meter(self._st, c, now, trigger))
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
