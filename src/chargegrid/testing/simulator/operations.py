"""What a simulated station does when the CSMS asks: the operations its speakers call.

The speakers (:mod:`.v16`, :mod:`.v201`) decode a CSMS-initiated call, call one of these, and
answer with what it returns; the calls that follow (a transaction starting, a reboot) are queued
here and sent after that answer. Rules:

* A remote start takes the given connector, or the first free one, when it is idle or reserved
  for that token, and never while the fleet winds down; a remote stop only a transaction under
  way (reason Remote).
* A reset stops every transaction first (reason as the CSMS's reset type), then reboots once
  every call before it is done: the transaction profiles go, the connection closes, and the
  station connects again 2 to 6 s later and boots with the reason given.
* ChangeAvailability to inoperative is Scheduled for a connector in a session, and applied when
  its car is unplugged; connector 0 means every connector.
* ReserveNow takes a free connector until its expiry; it answers Occupied, Faulted or
  Unavailable by the states of the connectors asked for.
* Before charging profiles change, every meter is brought up to now under the old limits; after,
  each car follows the new ones (:meth:`.life.ConnectorLife.follow_limit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chargegrid.testing.simulator.calls import Link
from chargegrid.testing.simulator.connector import ACTIVE, Connector, State, Trigger
from chargegrid.testing.simulator.life import ConnectorLife

if TYPE_CHECKING:
    from chargegrid.testing.simulator.calls import Calls


class Operations(ConnectorLife):
    """The CSMS-initiated operations of a :class:`~.station.SimStation` (a part of it)."""

    # Of the station:
    calls: Calls
    booted: bool
    boot_reason: str
    heartbeat_s: float
    _heartbeat_at: float | None

    if TYPE_CHECKING:

        def _close(self, now: float, reconnect_after: float) -> None: ...

    # --- transactions ------------------------------------------------------------------------

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
        if c is None or c.state not in ACTIVE:
            return False
        c.stop_reason = "Remote"
        return self.fire(c, Trigger.LEAVE, now)

    def queued(self, actions: frozenset[str]) -> bool:
        """Whether calls of ``actions`` wait to be sent or answered."""
        return self.calls.queued(actions)

    def unlock(self, connector_id: int, now: float) -> bool:
        c = self.connector(connector_id)
        if c is None:
            return False
        if c.state in ACTIVE:
            c.stop_reason = "UnlockCommand"
            self.fire(c, Trigger.LEAVE, now)
        return True

    # --- the station -------------------------------------------------------------------------

    def set_heartbeat(self, seconds: float, now: float) -> None:
        self.heartbeat_s = seconds
        if self._heartbeat_at is not None:
            self._heartbeat_at = now + seconds

    def reset(self, now: float, boot_reason: str, stop_reason: str = "SoftReset") -> None:
        """Stop every transaction, then reboot once those stops are sent."""
        self.reset_when_idle = False
        for c in self.connectors:
            if c.state in ACTIVE:
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

    # --- reservations ------------------------------------------------------------------------

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
        self._due(c, expires, Trigger.UNRESERVE)
        return "Accepted"

    def cancel_reservation(self, reservation_id: int, now: float) -> bool:
        for c in self.connectors:
            if c.state is State.RESERVED and c.reservation_id == reservation_id:
                return self.fire(c, Trigger.UNRESERVE, now)
        return False

    # --- charging profiles and meters --------------------------------------------------------

    def before_profiles_change(self, now: float) -> None:
        for c in self.connectors:
            self._integrate(c, now)

    def profiles_changed(self, now: float) -> None:
        """Profiles were installed or cleared: meter up to now under the old limits first."""
        for c in self.connectors:
            if c.state in ACTIVE:
                self.follow_limit(c, now)

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

    def send_meter_now(self, c: Connector, now: float) -> None:
        if c.state in ACTIVE:
            self._meter(c, now, "trigger")

    def resend_status(self, c: Connector | None, now: float) -> None:
        if c is not None:
            c.sent_status = None
        self._send_status(c, now)
