"""The simulated station's state machine, joined to a CSMS's RPC session by an in-memory link:
no sockets, a clock the test moves."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from chargegrid.protocols.ocpp16 import messages as m16
from chargegrid.protocols.ocpp16.dialect import DIALECT as DIALECT16
from chargegrid.protocols.ocpp201 import messages as m201
from chargegrid.protocols.ocpp201.dialect import DIALECT as DIALECT201
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.protocols.ocppj.session import CallAnswered, CallFailed, CallReceived, RpcSession
from chargegrid.testing.simulator.answers import minimal
from chargegrid.testing.simulator.car import Rng
from chargegrid.testing.simulator.station import Link, Params, SimStation, State
from chargegrid.testing.simulator.stats import Stats
from chargegrid.testing.simulator.v16 import Speaker16
from chargegrid.testing.simulator.v201 import Speaker201

T0 = 1_800_000_000.0
QUIET = Params(
    tokens=("CARD-1",),
    meter_interval_s=10,
    first_arrival_s=5,
    idle_s=(30, 30),
    session_s=(600, 600),
    fault_chance=0,
    reconnect_per_h=0,
)


class Csms:
    """A CSMS's RPC session that answers the station's calls and records them."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.dialect = DIALECT16 if version == "1.6" else DIALECT201
        self.session = RpcSession(self.dialect, new_id=lambda: f"c{next(self._ids)}")
        self._ids = itertools.count(1)
        self._tx_ids = itertools.count(100)
        self.calls: list[tuple[str, Any]] = []  # the station's calls, in order
        self.results: list[CallAnswered | CallFailed] = []
        self.order: list[str] = []  # what the CSMS received, answers included, in order
        self.answers: dict[str, Callable[[Any], msgspec.Struct]] = {}

    def answer(self, action: str, request: Any) -> msgspec.Struct:
        """The answer to a station's call; an OcppError raised here goes back as a CALLERROR."""
        if action in self.answers:
            return self.answers[action](request)
        if action == "BootNotification":
            return self._boot("Accepted", 60)
        if action == "StartTransaction":
            info = m16.IdTagInfo(status="Accepted")
            return m16.StartTransactionResponse(id_tag_info=info, transaction_id=next(self._tx_ids))
        return minimal(self.dialect.actions[action][1])

    def _boot(self, status: str, interval: int) -> msgspec.Struct:
        response = minimal(self.dialect.actions["BootNotification"][1])
        return msgspec.structs.replace(response, status=status, interval=interval)

    def exchange(self, st: SimStation, now: float) -> None:
        """Carry frames both ways until both sides are quiet."""
        while True:
            frames = st.data_to_send()
            for frame in frames:
                self.session.receive(frame, now)
            for event in self.session.events():
                if isinstance(event, CallReceived):
                    self.order.append(event.action)
                    self.calls.append((event.action, event.request))
                    try:
                        response = self.answer(event.action, event.request)
                    except OcppError as exc:
                        self.session.reply_error(event.unique_id, exc)
                    else:
                        self.session.reply(event.unique_id, response)
                elif isinstance(event, CallAnswered | CallFailed):
                    self.order.append(f"answer to {event.action}")
                    self.results.append(event)
            back = self.session.data_to_send()
            for frame in back:
                st.receive(frame, now)
            if not frames and not back:
                return

    def call(self, st: SimStation, request: msgspec.Struct, now: float) -> Any:
        """Send a CSMS-initiated call; returns the station's answer (or the failure)."""
        self.session.call(request, now)
        self.exchange(st, now)
        result = self.results.pop()
        return result.response if isinstance(result, CallAnswered) else result

    def actions(self) -> list[str]:
        return [a for a, _ in self.calls]


def station(version: str, params: Params = QUIET, seed: int = 1) -> SimStation:
    speaker = Speaker16() if version == "1.6" else Speaker201()
    return SimStation(f"CS-{version}", speaker, params, Rng(seed), Stats())  # type: ignore[arg-type]


def run(st: SimStation, csms: Csms, start: float, until: float) -> float:
    """Move the clock from ``start`` to ``until``, ticking the station when it asks."""
    now = start
    while True:
        deadline = st.next_deadline()
        if deadline is None or deadline > until:
            return until
        now = max(now, deadline)
        st.tick(now)
        csms.exchange(st, now)


def booted(version: str, params: Params = QUIET) -> tuple[SimStation, Csms]:
    st, csms = station(version, params), Csms(version)
    st.connected(T0)
    csms.exchange(st, T0)
    assert st.link is Link.ACCEPTED
    return st, csms


# --- boot -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_pending_station_boots_again_at_the_interval_given(version: str) -> None:
    st, csms = station(version), Csms(version)
    csms.answers["BootNotification"] = lambda _: csms._boot("Pending", 45)
    st.connected(T0)
    csms.exchange(st, T0)
    assert csms.actions() == ["BootNotification"] and st.link is Link.PENDING
    assert st.next_deadline() == T0 + 45  # nothing before the retry: that paces a boot storm
    del csms.answers["BootNotification"]
    run(st, csms, T0, T0 + 45)
    assert csms.actions()[:2] == ["BootNotification", "BootNotification"]
    assert st.link is Link.ACCEPTED
    statuses = [r for a, r in csms.calls if a == "StatusNotification"]
    if version == "1.6":  # the station as a whole (connector 0), then its connector
        assert [(s.connector_id, s.status) for s in statuses] == [
            (0, "Available"),
            (1, "Available"),
        ]
    else:
        assert [(s.evse_id, s.connector_status) for s in statuses] == [(1, "Available")]


def test_heartbeats_follow_the_interval_the_csms_gives() -> None:
    st, csms = booted("1.6", Params(first_arrival_s=10_000, idle_s=(9e9, 9e9), reconnect_per_h=0))
    run(st, csms, T0, T0 + 200)
    assert csms.actions().count("Heartbeat") == 3  # at 60, 120 and 180 s


# --- sessions ---------------------------------------------------------------------------------


def test_a_1_6_session_from_arrival_to_departure() -> None:
    st, csms = booted("1.6")
    run(st, csms, T0, T0 + 700)
    actions = csms.actions()
    start = actions.index("StartTransaction")
    assert actions[start - 2 : start + 2] == [
        "Authorize",
        "StatusNotification",  # Preparing
        "StartTransaction",
        "StatusNotification",  # Charging
    ]
    assert "StopTransaction" in actions
    statuses = [r.status for a, r in csms.calls if a == "StatusNotification" and r.connector_id]
    assert statuses[:4] == ["Available", "Preparing", "Charging", "Finishing"][: len(statuses[:4])]
    meters = [r for a, r in csms.calls if a == "MeterValues" and r.transaction_id == 100]
    assert len(meters) >= 59  # every 10 s for 600 s
    energy = [float(r.meter_value[0].sampled_value[0].value) for r in meters]
    assert energy == sorted(energy)
    power = [float(r.meter_value[0].sampled_value[1].value) for r in meters]
    assert all(0 <= p <= 11_000 for p in power) and max(power) > 5_000
    begin = next(r for a, r in csms.calls if a == "StartTransaction")
    end = next(r for a, r in csms.calls if a == "StopTransaction")
    assert end.transaction_id == 100 and end.reason == "EVDisconnected"
    assert end.meter_stop >= energy[-1] >= begin.meter_start
    # the car draws what its curve and the charger allow: about 11 kW for 10 min is < 2 kWh
    assert 0 < end.meter_stop - begin.meter_start <= 11_000 * 600 / 3600 + 1


def test_a_2_0_1_session_numbers_its_events_and_says_occupied() -> None:
    st, csms = booted("2.0.1")
    run(st, csms, T0, T0 + 700)
    events = [r for a, r in csms.calls if a == "TransactionEvent"]
    first = events[0].transaction_info.transaction_id
    events = [e for e in events if e.transaction_info.transaction_id == first]
    assert events[0].event_type == "Started" and events[-1].event_type == "Ended"
    assert [e.seq_no for e in events] == list(range(len(events)))
    assert events[0].id_token.id_token == "CARD-1" and events[0].trigger_reason == "Authorized"
    assert events[-1].transaction_info.stopped_reason == "EVDisconnected"
    statuses = [r.connector_status for a, r in csms.calls if a == "StatusNotification"]
    assert statuses[:3] == ["Available", "Occupied", "Available"]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_refused_token_starts_nothing(version: str) -> None:
    st, csms = booted(version)
    if version == "1.6":
        refuse = m16.AuthorizeResponse(id_tag_info=m16.IdTagInfo(status="Invalid"))
    else:
        refuse = m201.AuthorizeResponse(id_token_info=m201.IdTokenInfoType(status="Unknown"))
    csms.answers["Authorize"] = lambda _: refuse
    run(st, csms, T0, T0 + 30)
    assert "Authorize" in csms.actions()
    assert not {"StartTransaction", "TransactionEvent"} & set(csms.actions())
    assert st.connectors[0].state in (State.FINISHING, State.IDLE)


def test_a_start_the_csms_refuses_is_stopped_at_once() -> None:
    st, csms = booted("1.6")
    blocked = m16.IdTagInfo(status="Blocked")
    csms.answers["StartTransaction"] = lambda _: m16.StartTransactionResponse(
        id_tag_info=blocked, transaction_id=7
    )
    run(st, csms, T0, T0 + 10)
    stop = next(r for a, r in csms.calls if a == "StopTransaction")
    assert (stop.transaction_id, stop.reason) == (7, "DeAuthorized")


# --- what the station records ------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_call_answered_with_a_callerror_is_counted_apart_from_the_answered(version: str) -> None:
    st, csms = booted(version)
    stats: Stats = st.recorder  # type: ignore[assignment]

    def refuse(_: Any) -> msgspec.Struct:
        raise OcppError(ErrorKind.NOT_SUPPORTED, "not today")

    csms.answers["Authorize"] = refuse
    run(st, csms, T0, T0 + 30)
    assert csms.actions().count("Authorize") == 1
    code = csms.dialect.code(ErrorKind.NOT_SUPPORTED)
    assert stats.call_errors == {"Authorize": {code: 1}}
    assert "Authorize" not in stats.latencies and stats.failures == {}
    assert stats.call_error_count == stats.error_count == 1
    report = stats.report()
    assert report["call_errors"] == {"Authorize": {code: 1}}
    assert "Authorize" not in report["latency_ms"] and report["failed_calls"] == {}
    # no answer to go by: the attempt ends as if refused
    assert not {"StartTransaction", "TransactionEvent"} & set(csms.actions())


def test_a_call_never_answered_is_a_failed_call_not_a_callerror() -> None:
    st, _ = booted("1.6", Params(first_arrival_s=1e6, reconnect_per_h=0))
    stats: Stats = st.recorder  # type: ignore[assignment]
    st.send(st.speaker.heartbeat())
    st.tick(T0)
    assert st.data_to_send()  # lost on the way: the CSMS never sees it
    st.tick(T0 + st.params.call_timeout_s)
    assert stats.failures == {"Heartbeat: timeout": 1} and stats.call_errors == {}
    assert "Heartbeat" not in stats.latencies and stats.error_count == 1


# --- the CSMS's calls ---------------------------------------------------------------------------


def _charging(version: str) -> tuple[SimStation, Csms, float]:
    st, csms = booted(version)
    now = run(st, csms, T0, T0 + 30)
    assert st.connectors[0].state is State.CHARGING
    return st, csms, now


def test_a_charging_profile_sets_the_cars_power_and_zero_suspends_it() -> None:
    st, csms, now = _charging("1.6")
    tx = int(st.connectors[0].tx_id or 0)

    def profile(limit: float, pid: int) -> m16.SetChargingProfileRequest:
        return m16.SetChargingProfileRequest(
            connector_id=1,
            cs_charging_profiles=m16.ChargingProfile(
                charging_profile_id=pid,
                stack_level=1,
                charging_profile_purpose="TxProfile",
                charging_profile_kind="Relative",
                transaction_id=tx,
                charging_schedule=m16.ChargingSchedule(
                    charging_rate_unit="A",
                    charging_schedule_period=[
                        m16.ChargingSchedulePeriod(start_period=0, limit=limit)
                    ],
                ),
            ),
        )

    assert csms.call(st, profile(8, 1), now).status == "Accepted"
    now = run(st, csms, now, now + 25)
    meter = [r for a, r in csms.calls if a == "MeterValues"][-1]
    assert 0 < float(meter.meter_value[0].sampled_value[1].value) <= 8 * 230 * 3
    composite = csms.call(st, m16.GetCompositeScheduleRequest(connector_id=1, duration=60), now)
    assert composite.charging_schedule.charging_schedule_period[0].limit == 8.0
    assert csms.call(st, profile(0, 1), now).status == "Accepted"
    assert st.connectors[0].state is State.SUSPENDED_EVSE
    assert csms.calls[-1][1].status == "SuspendedEVSE"
    cleared = csms.call(st, m16.ClearChargingProfileRequest(id=1), now)
    assert cleared.status == "Accepted" and st.connectors[0].state is State.CHARGING


def test_a_tx_profile_without_a_transaction_is_rejected() -> None:
    st, csms = booted("1.6", Params(first_arrival_s=1e6, reconnect_per_h=0))
    request = m16.SetChargingProfileRequest(
        connector_id=1,
        cs_charging_profiles=m16.ChargingProfile(
            charging_profile_id=1,
            stack_level=0,
            charging_profile_purpose="TxProfile",
            charging_profile_kind="Absolute",
            charging_schedule=m16.ChargingSchedule(
                charging_rate_unit="W",
                charging_schedule_period=[m16.ChargingSchedulePeriod(start_period=0, limit=1)],
            ),
        ),
    )
    assert csms.call(st, request, T0).status == "Rejected"


def test_remote_start_is_answered_before_the_transaction_starts() -> None:
    st, csms = booted("1.6", Params(first_arrival_s=1e6, reconnect_per_h=0))
    csms.calls.clear()
    csms.order.clear()
    answer = csms.call(st, m16.RemoteStartTransactionRequest(id_tag="APP-7", connector_id=1), T0)
    assert answer.status == "Accepted"
    assert csms.order[:2] == ["answer to RemoteStartTransaction", "StartTransaction"]
    assert csms.calls[0][1].id_tag == "APP-7"
    tx = st.connectors[0].tx_id
    stop = csms.call(st, m16.RemoteStopTransactionRequest(transaction_id=int(tx or 0)), T0 + 5)
    assert stop.status == "Accepted"
    assert csms.calls[-2][0] == "StopTransaction" and csms.calls[-2][1].reason == "Remote"
    again = csms.call(st, m16.RemoteStopTransactionRequest(transaction_id=int(tx or 0)), T0 + 6)
    assert again.status == "Rejected"


def test_2_0_1_variables_are_read_and_written() -> None:
    st, csms = booted("2.0.1")
    hb = m201.GetVariableDataType(
        component=m201.ComponentType(name="OCPPCommCtrlr"),
        variable=m201.VariableType(name="HeartbeatInterval"),
    )
    nope = m201.GetVariableDataType(
        component=m201.ComponentType(name="Nowhere"), variable=m201.VariableType(name="X")
    )
    got = csms.call(st, m201.GetVariablesRequest(get_variable_data=[hb, nope]), T0)
    assert [(r.attribute_status, r.attribute_value) for r in got.get_variable_result] == [
        ("Accepted", "60"),
        ("UnknownComponent", None),
    ]
    change = m201.SetVariableDataType(
        attribute_value="15", component=hb.component, variable=hb.variable
    )
    done = csms.call(st, m201.SetVariablesRequest(set_variable_data=[change]), T0)
    assert done.set_variable_result[0].attribute_status == "Accepted" and st.heartbeat_s == 15
    report = csms.call(st, m201.GetBaseReportRequest(request_id=3, report_base="FullInventory"), T0)
    assert report.status == "Accepted" and csms.calls[-1][0] == "NotifyReport"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_reset_stops_the_session_then_reboots(version: str) -> None:
    st, csms, now = _charging(version)
    reset = (
        m16.ResetRequest(type="Soft") if version == "1.6" else m201.ResetRequest(type="Immediate")
    )
    assert csms.call(st, reset, now).status == "Accepted"
    assert csms.actions()[-2] in ("StopTransaction", "TransactionEvent")
    assert st.want_close and not st.booted
    st.disconnected(now)
    assert st.connect_at is not None and now + 2 <= st.connect_at <= now + 6
    fresh, back = Csms(version), st.connect_at
    st.connected(back)
    fresh.exchange(st, back)
    assert fresh.actions()[0] == "BootNotification"
    if version == "2.0.1":
        assert fresh.calls[0][1].reason == "RemoteReset"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_every_csms_operation_gets_a_valid_answer(version: str) -> None:
    """The least valid request of each CSMS-initiated action is answered with a CALLRESULT that
    passes the CSMS's own validation."""
    dialect = DIALECT16 if version == "1.6" else DIALECT201
    for action in sorted(dialect.csms_actions):
        st, csms, now = _charging(version)
        answer = csms.call(st, minimal(dialect.actions[action][0]), now)
        assert isinstance(answer, dialect.actions[action][1]), (action, answer)
        assert st.recorder.errors == {}, action  # type: ignore[attr-defined]


# --- connections --------------------------------------------------------------------------------


def test_transaction_messages_outlive_a_lost_connection() -> None:
    st, csms, now = _charging("1.6")
    csms.answers["MeterValues"] = lambda _: pytest.fail("the CSMS never answers this one")
    st.tick(now + 10)  # a MeterValues goes out...
    st.data_to_send()
    st.disconnected(now + 11)  # ...and the connection drops before its answer
    assert st.connect_at is not None
    fresh, back = Csms("1.6"), st.connect_at
    st.connected(back)
    fresh.exchange(st, back)
    # no boot after a mere reconnection: the statuses, after the meter values it still owed
    assert fresh.actions()[:2] == ["MeterValues", "StatusNotification"]
    assert "BootNotification" not in fresh.actions()


def test_failed_connections_back_off() -> None:
    st = station("1.6")
    delays = []
    for _ in range(9):
        st.connect_failed(T0)
        assert st.connect_at is not None
        delays.append(st.connect_at - T0)
    assert delays[0] <= 1 and 30 <= delays[-1] <= 60
