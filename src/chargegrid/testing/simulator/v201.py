"""What a simulated station says in OCPP 2.0.1 (Part 2, by functional block).

Each EVSE has one connector. A transaction starts when the driver is authorized (E03, TxStartPoint
Authorized; the station picks the transaction id) and goes as TransactionEvent Started, Updated
(MeterValuePeriodic every ``SampledDataCtrlr.TxUpdatedInterval``, ChargingStateChanged) and Ended,
with Energy.Active.Import.Register, Power.Active.Import, Current.Import and SoC. The device model
is a handful of variables (:data:`VARIABLES`), read and written with GetVariables / SetVariables
and reported by NotifyReport after GetBaseReport / GetReport.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from chargegrid.protocols.ocpp201 import messages as m
from chargegrid.protocols.ocpp201.dialect import DIALECT
from chargegrid.testing.simulator.answers import minimal
from chargegrid.testing.simulator.profiles import Period, Profile, Purpose
from chargegrid.testing.simulator.station import (
    IN_TRANSACTION,
    Connector,
    SimStation,
    State,
    epoch,
    mirrored,
    wall,
)

_PURPOSE: dict[str, Purpose] = {
    "ChargingStationMaxProfile": "max",
    "ChargingStationExternalConstraints": "max",
    "TxDefaultProfile": "default",
    "TxProfile": "tx",
}
_STATUS = {
    State.IDLE: "Available",
    State.RESERVED: "Reserved",
    State.FAULTED: "Faulted",
    State.UNAVAILABLE: "Unavailable",
}
_CHARGING_STATE = {
    State.CHARGING: "Charging",
    State.SUSPENDED_EV: "SuspendedEV",
    State.SUSPENDED_EVSE: "SuspendedEVSE",
}
#: The core's stop reasons (1.6 words) as 2.0.1 trigger and stopped reasons (E06, E07).
_STOP: dict[str, tuple[str, str]] = {
    "EVDisconnected": ("EVDeparted", "EVDisconnected"),
    "Local": ("StopAuthorized", "Local"),
    "Remote": ("RemoteStop", "Remote"),
    "DeAuthorized": ("Deauthorized", "DeAuthorized"),
    "SoftReset": ("ResetCommand", "ImmediateReset"),
    "HardReset": ("ResetCommand", "ImmediateReset"),
    "ImmediateReset": ("ResetCommand", "ImmediateReset"),
    "UnlockCommand": ("UnlockCommand", "Other"),
}
#: (component, variable) -> writable. Values live in ``SimStation.config`` as "Component/Variable".
VARIABLES: dict[tuple[str, str], bool] = {
    ("AuthCtrlr", "AuthorizeRemoteStart"): True,
    ("ChargingStation", "AvailabilityState"): False,
    ("DeviceDataCtrlr", "ItemsPerMessage"): False,
    ("OCPPCommCtrlr", "HeartbeatInterval"): True,
    ("OCPPCommCtrlr", "NetworkConfigurationPriority"): True,
    ("SampledDataCtrlr", "TxUpdatedInterval"): True,
    ("SampledDataCtrlr", "TxUpdatedMeasurands"): True,
    ("SecurityCtrlr", "SecurityProfile"): False,
    ("SmartChargingCtrlr", "Enabled"): False,
    ("TxCtrlr", "TxStartPoint"): True,
    ("TxCtrlr", "TxStopPoint"): True,
}


def _token(value: str) -> m.IdTokenType:
    return m.IdTokenType(id_token=value[:36], type="ISO14443")


class Speaker201:
    """OCPP 2.0.1 messages of a :class:`~.station.SimStation`."""

    dialect = mirrored(DIALECT)
    transaction_actions = frozenset({"TransactionEvent"})

    def initial_config(self, st: SimStation) -> dict[str, str]:
        return {
            "AuthCtrlr/AuthorizeRemoteStart": "false",
            "ChargingStation/AvailabilityState": "Available",
            "DeviceDataCtrlr/ItemsPerMessage": "50",
            "OCPPCommCtrlr/HeartbeatInterval": str(int(st.heartbeat_s)),
            "OCPPCommCtrlr/NetworkConfigurationPriority": "0",
            "SampledDataCtrlr/TxUpdatedInterval": str(int(st.meter_interval_s)),
            "SampledDataCtrlr/TxUpdatedMeasurands": "Energy.Active.Import.Register,"
            "Power.Active.Import,Current.Import,SoC",
            "SecurityCtrlr/SecurityProfile": "1",
            "SmartChargingCtrlr/Enabled": "true",
            "TxCtrlr/TxStartPoint": "Authorized",
            "TxCtrlr/TxStopPoint": "EVConnected,Authorized",
        }

    # --- the station's calls -----------------------------------------------------------------

    def boot(self, st: SimStation) -> msgspec.Struct:
        reason: Any = st.boot_reason
        return m.BootNotificationRequest(
            charging_station=m.ChargingStationType(
                model=st.params.model[:20],
                vendor_name=st.params.vendor[:50],
                serial_number=st.id[-25:],
                firmware_version="sim-1.0",
            ),
            reason=reason,
        )

    def boot_result(self, response: msgspec.Struct) -> tuple[str, int]:
        assert isinstance(response, m.BootNotificationResponse)
        return response.status, response.interval

    def heartbeat(self) -> msgspec.Struct:
        return m.HeartbeatRequest()

    def wire_status(self, c: Connector) -> str:
        return _STATUS.get(c.state, "Occupied")

    def status(self, st: SimStation, c: Connector | None, now: float) -> msgspec.Struct | None:
        if c is None:
            return None  # 2.0.1 has no status of the station as a whole
        status: Any = self.wire_status(c)
        return m.StatusNotificationRequest(
            timestamp=wall(now), connector_status=status, evse_id=c.id, connector_id=1
        )

    def charging_state(self, st: SimStation, c: Connector, now: float) -> msgspec.Struct:
        return self._event(c, now, "Updated", "ChargingStateChanged")

    def authorize(self, token: str) -> msgspec.Struct:
        return m.AuthorizeRequest(id_token=_token(token))

    def authorized(self, response: msgspec.Struct) -> bool:
        assert isinstance(response, m.AuthorizeResponse)
        return response.id_token_info.status == "Accepted"

    def start(self, st: SimStation, c: Connector, now: float) -> msgspec.Struct:
        c.tx_id = str(uuid.UUID(int=int(st.rng.random() * 2**53) << 64 | c.id, version=4))
        trigger = "RemoteStart" if c.remote_start_id is not None else "Authorized"
        event = self._event(c, now, "Started", trigger, "Transaction.Begin", st)
        return msgspec.structs.replace(
            event,
            evse=m.EVSEType(id=c.id, connector_id=1),
            id_token=_token(c.token or ""),
            reservation_id=c.reservation_id,
        )

    def started(self, c: Connector, response: msgspec.Struct) -> bool:
        assert isinstance(response, m.TransactionEventResponse)
        info = response.id_token_info
        return info is None or info.status == "Accepted"

    def meter(self, st: SimStation, c: Connector, now: float, trigger: str) -> msgspec.Struct:
        if trigger == "trigger":
            return self._event(c, now, "Updated", "Trigger", "Trigger", st)
        return self._event(c, now, "Updated", "MeterValuePeriodic", "Sample.Periodic", st)

    def stop(self, st: SimStation, c: Connector, now: float) -> msgspec.Struct:
        trigger, stopped = _STOP.get(c.stop_reason, ("AbnormalCondition", "Other"))
        event = self._event(c, now, "Ended", trigger, "Transaction.End", st)
        info = msgspec.structs.replace(
            event.transaction_info, charging_state="EVConnected", stopped_reason=stopped
        )
        token = _token(c.token) if c.token and c.stop_reason == "Local" else None
        return msgspec.structs.replace(event, transaction_info=info, id_token=token)

    def _event(
        self,
        c: Connector,
        now: float,
        kind: Any,
        trigger: Any,
        context: Any = None,
        st: SimStation | None = None,
    ) -> m.TransactionEventRequest:
        c.seq_no += 1
        state: Any = _CHARGING_STATE.get(c.state, "EVConnected")
        return m.TransactionEventRequest(
            event_type=kind,
            timestamp=wall(now),
            trigger_reason=trigger,
            seq_no=c.seq_no - 1,
            transaction_info=m.TransactionType(
                transaction_id=c.tx_id or "",
                charging_state=state,
                remote_start_id=c.remote_start_id if kind == "Started" else None,
            ),
            meter_value=[_meter_value(st, c, now, context)] if st is not None else None,
        )

    # --- the CSMS's calls --------------------------------------------------------------------

    def answer(
        self, st: SimStation, action: str, request: msgspec.Struct, now: float
    ) -> msgspec.Struct:
        handler = _HANDLERS.get(action)
        if handler is not None:
            return handler(st, request, now)
        if action == "DataTransfer":
            return m.DataTransferResponse(status="UnknownVendorId")
        return minimal(self.dialect.actions[action][1])


def _meter_value(st: SimStation, c: Connector, now: float, context: Any) -> m.MeterValueType:
    amps = c.power_w / (st.params.voltage * st.params.phases)
    values = [
        m.SampledValueType(
            value=round(c.meter_wh, 1),
            context=context,
            measurand="Energy.Active.Import.Register",
            unit_of_measure=m.UnitOfMeasureType(unit="Wh"),
        ),
        m.SampledValueType(
            value=round(c.power_w),
            context=context,
            measurand="Power.Active.Import",
            unit_of_measure=m.UnitOfMeasureType(unit="W"),
        ),
        m.SampledValueType(
            value=round(amps, 1),
            context=context,
            measurand="Current.Import",
            unit_of_measure=m.UnitOfMeasureType(unit="A"),
        ),
    ]
    if c.car is not None:
        values.append(
            m.SampledValueType(
                value=round(c.car.soc * 100),
                context=context,
                measurand="SoC",
                location="EV",
                unit_of_measure=m.UnitOfMeasureType(unit="Percent"),
            )
        )
    return m.MeterValueType(sampled_value=values, timestamp=wall(now))


def _start(st: SimStation, req: m.RequestStartTransactionRequest, now: float) -> Any:
    ok = st.remote_start(req.evse_id, req.id_token.id_token, req.remote_start_id, now)
    if ok and req.charging_profile is not None:
        c = next(
            c
            for c in st.connectors
            if c.remote_start_id == req.remote_start_id and c.state in IN_TRANSACTION
        )
        profile = _profile(req.charging_profile, c.id, now)
        st.profiles.install(dataclasses.replace(profile, transaction_id=c.tx_id))
    return m.RequestStartTransactionResponse(status="Accepted" if ok else "Rejected")


def _stop(st: SimStation, req: m.RequestStopTransactionRequest, now: float) -> Any:
    ok = st.remote_stop(req.transaction_id, now)
    return m.RequestStopTransactionResponse(status="Accepted" if ok else "Rejected")


def _reset(st: SimStation, req: m.ResetRequest, now: float) -> Any:
    if req.evse_id is not None:  # resetting one EVSE is not simulated
        return m.ResetResponse(status="Rejected")
    busy = any(c.state in IN_TRANSACTION for c in st.connectors)
    if req.type == "OnIdle" and busy:
        st.reset_when_idle = True
        return m.ResetResponse(status="Scheduled")
    st.reset(now, "RemoteReset", "ImmediateReset")
    return m.ResetResponse(status="Accepted")


def _availability(st: SimStation, req: m.ChangeAvailabilityRequest, now: float) -> Any:
    evse = req.evse.id if req.evse is not None else 0
    status: Any = st.availability(evse, req.operational_status == "Operative", now)
    return m.ChangeAvailabilityResponse(status=status)


def _unlock(st: SimStation, req: m.UnlockConnectorRequest, now: float) -> Any:
    c = st.connector(req.evse_id)
    if c is None or req.connector_id != 1:
        return m.UnlockConnectorResponse(status="UnknownConnector")
    if c.state in IN_TRANSACTION:  # F05.FR.02: stop the transaction first
        return m.UnlockConnectorResponse(status="OngoingAuthorizedTransaction")
    st.unlock(c.id, now)
    return m.UnlockConnectorResponse(status="Unlocked")


def _profile(p: m.ChargingProfileType, evse: int, now: float) -> Profile:
    schedule = p.charging_schedule[0]
    return Profile(
        id=p.id,
        connector=evse,
        purpose=_PURPOSE[p.charging_profile_purpose],
        stack_level=p.stack_level,
        unit=schedule.charging_rate_unit,
        periods=tuple(
            Period(x.start_period, x.limit, x.number_phases)
            for x in schedule.charging_schedule_period
        ),
        received_at=now,
        kind=p.charging_profile_kind,
        start=epoch(schedule.start_schedule),
        duration=schedule.duration,
        valid_from=epoch(p.valid_from),
        valid_to=epoch(p.valid_to),
        recurrency=p.recurrency_kind,
        transaction_id=p.transaction_id,
        raw=p,
    )


def _set_profile(st: SimStation, req: m.SetChargingProfileRequest, now: float) -> Any:
    profile = _profile(req.charging_profile, req.evse_id, now)
    c = st.connector(req.evse_id)
    if req.evse_id != 0 and c is None:
        return m.SetChargingProfileResponse(status="Rejected")
    if profile.purpose == "tx":  # K01.FR.03: a TxProfile needs its transaction
        if c is None or c.tx_id is None or c.state not in IN_TRANSACTION:
            return m.SetChargingProfileResponse(status="Rejected")
        if profile.transaction_id not in (None, c.tx_id):
            return m.SetChargingProfileResponse(status="Rejected")
        profile = dataclasses.replace(profile, transaction_id=c.tx_id)
    st.before_profiles_change(now)
    st.profiles.install(profile)
    st.profiles_changed(now)
    return m.SetChargingProfileResponse(status="Accepted")


def _clear_profile(st: SimStation, req: m.ClearChargingProfileRequest, now: float) -> Any:
    criteria = req.charging_profile_criteria
    st.before_profiles_change(now)
    cleared = st.profiles.clear(
        req.charging_profile_id,
        criteria.evse_id if criteria else None,
        _PURPOSE.get(criteria.charging_profile_purpose or "") if criteria else None,
        criteria.stack_level if criteria else None,
    )
    st.profiles_changed(now)
    return m.ClearChargingProfileResponse(status="Accepted" if cleared else "Unknown")


def _get_profiles(st: SimStation, req: m.GetChargingProfilesRequest, now: float) -> Any:
    by_evse: dict[int, list[Any]] = {}
    for p in st.profiles.items.values():
        if p.raw is not None and req.evse_id in (None, p.connector):
            by_evse.setdefault(p.connector, []).append(p.raw)
    if not by_evse:
        return m.GetChargingProfilesResponse(status="NoProfiles")
    for n, (evse, profiles) in enumerate(sorted(by_evse.items())):
        st.send(
            m.ReportChargingProfilesRequest(
                request_id=req.request_id,
                charging_limit_source="CSO",
                charging_profile=profiles,
                evse_id=evse,
                tbc=n < len(by_evse) - 1,
            )
        )
    return m.GetChargingProfilesResponse(status="Accepted")


def _composite(st: SimStation, req: m.GetCompositeScheduleRequest, now: float) -> Any:
    if req.evse_id != 0 and st.connector(req.evse_id) is None:
        return m.GetCompositeScheduleResponse(status="Rejected")
    unit: Any = req.charging_rate_unit or "A"
    periods = st.composite(req.evse_id, req.duration, unit, now)
    return m.GetCompositeScheduleResponse(
        status="Accepted",
        schedule=m.CompositeScheduleType(
            charging_schedule_period=[
                m.ChargingSchedulePeriodType(start_period=start, limit=limit)
                for start, limit in periods
            ],
            evse_id=req.evse_id,
            duration=req.duration,
            schedule_start=wall(now),
            charging_rate_unit=unit,
        ),
    )


def _config(st: SimStation) -> dict[str, str]:
    """The variables, with the intervals as they are now (the boot's answer may set one)."""
    return {
        **st.config,
        "OCPPCommCtrlr/HeartbeatInterval": str(int(st.heartbeat_s)),
        "SampledDataCtrlr/TxUpdatedInterval": str(int(st.meter_interval_s)),
    }


def _known(st: SimStation, component: m.ComponentType, variable: m.VariableType) -> str | None:
    """The variable's key in ``st.config``, or the status saying why there is none."""
    if not any(c == component.name for c, _ in VARIABLES):
        return None
    key = f"{component.name}/{variable.name}"
    return key if key in st.config else ""


def _get_variables(st: SimStation, req: m.GetVariablesRequest, now: float) -> Any:
    results = []
    config = _config(st)
    for item in req.get_variable_data:
        key = _known(st, item.component, item.variable)
        status: Any = (
            "UnknownComponent" if key is None else "UnknownVariable" if not key else "Accepted"
        )
        results.append(
            m.GetVariableResultType(
                attribute_status=status,
                component=item.component,
                variable=item.variable,
                attribute_type=item.attribute_type,
                attribute_value=config[key] if key else None,
            )
        )
    return m.GetVariablesResponse(get_variable_result=results)


def _set_variables(st: SimStation, req: m.SetVariablesRequest, now: float) -> Any:
    results = []
    for item in req.set_variable_data:
        key = _known(st, item.component, item.variable)
        status: Any = "UnknownComponent" if key is None else "UnknownVariable"
        if key:
            status = _set(st, key, item.attribute_value, now)
        results.append(
            m.SetVariableResultType(
                attribute_status=status,
                component=item.component,
                variable=item.variable,
                attribute_type=item.attribute_type,
            )
        )
    return m.SetVariablesResponse(set_variable_result=results)


def _set(st: SimStation, key: str, value: str, now: float) -> str:
    component, _, variable = key.partition("/")
    if not VARIABLES[(component, variable)]:
        return "Rejected"
    if key in ("OCPPCommCtrlr/HeartbeatInterval", "SampledDataCtrlr/TxUpdatedInterval"):
        if not value.isdigit() or int(value) <= 0:
            return "Rejected"
        if variable == "HeartbeatInterval":
            st.set_heartbeat(int(value), now)
        else:
            st.meter_interval_s = int(value)
    st.config[key] = value
    return "Accepted"


def _report(st: SimStation, req: m.GetBaseReportRequest | m.GetReportRequest, now: float) -> Any:
    data = []
    for key, value in sorted(_config(st).items()):
        component, _, variable = key.partition("/")
        writable = VARIABLES[(component, variable)]
        data.append(
            m.ReportDataType(
                component=m.ComponentType(name=component),
                variable=m.VariableType(name=variable),
                variable_attribute=[
                    m.VariableAttributeType(
                        type="Actual",
                        value=value,
                        mutability="ReadWrite" if writable else "ReadOnly",
                    )
                ],
            )
        )
    st.send(
        m.NotifyReportRequest(
            request_id=req.request_id, generated_at=wall(now), seq_no=0, report_data=data
        )
    )
    if isinstance(req, m.GetReportRequest):
        return m.GetReportResponse(status="Accepted")
    return m.GetBaseReportResponse(status="Accepted")


def _trigger(st: SimStation, req: m.TriggerMessageRequest, now: float) -> Any:
    evse = req.evse.id if req.evse is not None else None
    chosen = [c for c in st.connectors if evse in (None, c.id)]
    if evse is not None and not chosen:
        return m.TriggerMessageResponse(status="Rejected")
    what = req.requested_message
    if what == "BootNotification":
        st.send(Speaker201().boot(st))
    elif what == "Heartbeat":
        st.send(m.HeartbeatRequest())
    elif what == "StatusNotification":
        for c in chosen:
            st.resend_status(c, now)
    elif what in ("MeterValues", "TransactionEvent"):
        for c in chosen:
            if c.state in IN_TRANSACTION:
                st.send_meter_now(c, now)
            elif what == "MeterValues":
                st.send(
                    m.MeterValuesRequest(
                        evse_id=c.id, meter_value=[_meter_value(st, c, now, "Trigger")]
                    )
                )
    elif what == "FirmwareStatusNotification":
        st.send(m.FirmwareStatusNotificationRequest(status="Idle"))
    elif what == "LogStatusNotification":
        st.send(m.LogStatusNotificationRequest(status="Idle"))
    else:  # certificates: the simulator has no key pair
        return m.TriggerMessageResponse(status="NotImplemented")
    return m.TriggerMessageResponse(status="Accepted")


def _transaction_status(st: SimStation, req: m.GetTransactionStatusRequest, now: float) -> Any:
    queued = st.queued(Speaker201.transaction_actions)
    if req.transaction_id is None:
        return m.GetTransactionStatusResponse(messages_in_queue=queued)
    ongoing = st.transaction(req.transaction_id) is not None
    return m.GetTransactionStatusResponse(messages_in_queue=queued, ongoing_indicator=ongoing)


def _reserve(st: SimStation, req: m.ReserveNowRequest, now: float) -> Any:
    expires = epoch(req.expiry_date_time) or now
    status: Any = st.reserve(req.evse_id, req.id_token.id_token, req.id, expires, now)
    return m.ReserveNowResponse(status=status)


def _cancel_reservation(st: SimStation, req: m.CancelReservationRequest, now: float) -> Any:
    ok = st.cancel_reservation(req.reservation_id, now)
    return m.CancelReservationResponse(status="Accepted" if ok else "Rejected")


def _send_local_list(st: SimStation, req: m.SendLocalListRequest, now: float) -> Any:
    st.local_list_version = req.version_number
    return m.SendLocalListResponse(status="Accepted")


def _local_list_version(st: SimStation, req: m.GetLocalListVersionRequest, now: float) -> Any:
    return m.GetLocalListVersionResponse(version_number=st.local_list_version)


_HANDLERS: dict[str, Callable[[SimStation, Any, float], msgspec.Struct]] = {
    "RequestStartTransaction": _start,
    "RequestStopTransaction": _stop,
    "Reset": _reset,
    "ChangeAvailability": _availability,
    "UnlockConnector": _unlock,
    "SetChargingProfile": _set_profile,
    "ClearChargingProfile": _clear_profile,
    "GetChargingProfiles": _get_profiles,
    "GetCompositeSchedule": _composite,
    "GetVariables": _get_variables,
    "SetVariables": _set_variables,
    "GetBaseReport": _report,
    "GetReport": _report,
    "TriggerMessage": _trigger,
    "GetTransactionStatus": _transaction_status,
    "ReserveNow": _reserve,
    "CancelReservation": _cancel_reservation,
    "SendLocalList": _send_local_list,
    "GetLocalListVersion": _local_list_version,
}
