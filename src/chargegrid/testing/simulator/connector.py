"""A simulated connector's state machine: its states, what moves them, and its data.

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

The table is here; what entering each state does is :class:`.life.ConnectorLife`'s.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chargegrid.testing.simulator.car import Car

#: Below this a car does not charge: 6 A on one phase (IEC 61851-1).
MIN_POWER_W = 6 * 230.0


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
#: A car plugged in and a transaction under way: metered, and stopped by a reset or wind-down.
ACTIVE = frozenset({S.CHARGING, S.SUSPENDED_EV, S.SUSPENDED_EVSE})


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
