"""What a simulated station says in OCPP 1.6J (OCPP 1.6 edition 2, sections 4 and 5).

Meter values carry Energy.Active.Import.Register (Wh), Power.Active.Import (W), Current.Import
(A) and the car's SoC, as MeterValues with the transaction id, every ``MeterValueSampleInterval``.
The answers to the CSMS (section 5) change what the station does where the operation means it;
every other operation gets the least valid answer (:mod:`.answers`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgspec

from chargegrid.protocols.ocpp16 import messages as m
from chargegrid.protocols.ocpp16.dialect import DIALECT
from chargegrid.testing.simulator.answers import minimal
from chargegrid.testing.simulator.profiles import Period, Profile, Purpose
from chargegrid.testing.simulator.station import (
    IN_TRANSACTION,
    STATUS_16,
    Connector,
    SimStation,
    State,
    epoch,
    mirrored,
    wall,
)

_PURPOSE: dict[str, Purpose] = {
    "ChargePointMaxProfile": "max",
    "TxDefaultProfile": "default",
    "TxProfile": "tx",
}
_FAULTS = ("GroundFailure", "HighTemperature", "OverCurrentFailure", "PowerMeterFailure")
#: Configuration keys (section 9.1) and whether the CSMS may change them.
_KEYS: dict[str, bool] = {
    "AuthorizeRemoteTxRequests": True,
    "ChargeProfileMaxStackLevel": False,
    "ChargingScheduleAllowedChargingRateUnit": False,
    "ConnectionTimeOut": True,
    "HeartbeatInterval": True,
    "LocalAuthorizeOffline": True,
    "MeterValueSampleInterval": True,
    "MeterValuesSampledData": True,
    "NumberOfConnectors": False,
    "StopTransactionOnEVSideDisconnect": True,
    "SupportedFeatureProfiles": False,
}


class Speaker16:
    """OCPP 1.6J messages of a :class:`~.station.SimStation`."""

    dialect = mirrored(DIALECT)
    transaction_actions = frozenset({"StartTransaction", "StopTransaction", "MeterValues"})

    def initial_config(self, st: SimStation) -> dict[str, str]:
        return {
            "AuthorizeRemoteTxRequests": "false",
            "ChargeProfileMaxStackLevel": "8",
            "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
            "ConnectionTimeOut": "60",
            "HeartbeatInterval": str(int(st.heartbeat_s)),
            "LocalAuthorizeOffline": "false",
            "MeterValueSampleInterval": str(int(st.meter_interval_s)),
            "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import",
            "NumberOfConnectors": str(len(st.connectors)),
            "StopTransactionOnEVSideDisconnect": "true",
            "SupportedFeatureProfiles": "Core,FirmwareManagement,LocalAuthListManagement,"
            "Reservation,SmartCharging,RemoteTrigger",
        }

    # --- the station's calls -----------------------------------------------------------------

    def boot(self, st: SimStation) -> msgspec.Struct:
        return m.BootNotificationRequest(
            charge_point_vendor=st.params.vendor[:20],
            charge_point_model=st.params.model[:20],
            charge_point_serial_number=st.id[-25:],
            firmware_version="sim-1.0",
        )

    def boot_result(self, response: msgspec.Struct) -> tuple[str, int]:
        assert isinstance(response, m.BootNotificationResponse)
        return response.status, response.interval

    def heartbeat(self) -> msgspec.Struct:
        return m.HeartbeatRequest()

    def wire_status(self, c: Connector) -> str:
        return STATUS_16[c.state]

    def status(self, st: SimStation, c: Connector | None, now: float) -> msgspec.Struct:
        faulted = c is not None and c.state is State.FAULTED
        error: Any = st.rng.pick(_FAULTS) if faulted else "NoError"
        status: Any = "Available" if c is None else STATUS_16[c.state]
        return m.StatusNotificationRequest(
            connector_id=0 if c is None else c.id,
            error_code=error,
            status=status,
            timestamp=wall(now),
        )

    def charging_state(self, st: SimStation, c: Connector, now: float) -> None:
        return None  # the StatusNotification (Charging, SuspendedEV, SuspendedEVSE) says it

    def authorize(self, token: str) -> msgspec.Struct:
        return m.AuthorizeRequest(id_tag=token[:20])

    def authorized(self, response: msgspec.Struct) -> bool:
        assert isinstance(response, m.AuthorizeResponse)
        return response.id_tag_info.status == "Accepted"

    def start(self, st: SimStation, c: Connector, now: float) -> msgspec.Struct:
        return m.StartTransactionRequest(
            connector_id=c.id,
            id_tag=(c.token or "")[:20],
            meter_start=int(c.meter_wh),
            timestamp=wall(now),
            reservation_id=c.reservation_id,
        )

    def started(self, c: Connector, response: msgspec.Struct) -> bool:
        assert isinstance(response, m.StartTransactionResponse)
        c.tx_id = str(response.transaction_id)
        return response.id_tag_info.status == "Accepted"

    def meter(self, st: SimStation, c: Connector, now: float, trigger: str) -> msgspec.Struct:
        context: Any = "Trigger" if trigger == "trigger" else "Sample.Periodic"
        amps = c.power_w / (st.params.voltage * st.params.phases)
        values = [
            m.SampledValue(
                value=str(int(c.meter_wh)),
                context=context,
                measurand="Energy.Active.Import.Register",
                unit="Wh",
            ),
            m.SampledValue(
                value=f"{c.power_w:.0f}", context=context, measurand="Power.Active.Import", unit="W"
            ),
            m.SampledValue(
                value=f"{amps:.1f}", context=context, measurand="Current.Import", unit="A"
            ),
        ]
        if c.car is not None:
            values.append(
                m.SampledValue(
                    value=f"{c.car.soc * 100:.0f}",
                    context=context,
                    measurand="SoC",
                    location="EV",
                    unit="Percent",
                )
            )
        return m.MeterValuesRequest(
            connector_id=c.id,
            transaction_id=int(c.tx_id) if c.tx_id is not None else None,
            meter_value=[m.MeterValue(timestamp=wall(now), sampled_value=values)],
        )

    def stop(self, st: SimStation, c: Connector, now: float) -> msgspec.Struct | None:
        if c.tx_id is None:  # the start was never answered: there is nothing to stop
            return None
        reason: Any = c.stop_reason
        return m.StopTransactionRequest(
            meter_stop=int(c.meter_wh),
            timestamp=wall(now),
            transaction_id=int(c.tx_id),
            id_tag=(c.token or "")[:20] if reason == "Local" else None,
            reason=reason,
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


def _remote_start(st: SimStation, req: m.RemoteStartTransactionRequest, now: float) -> Any:
    ok = st.remote_start(req.connector_id, req.id_tag, None, now)
    if ok and req.charging_profile is not None:
        c = next(c for c in st.connectors if c.token == req.id_tag and c.state in IN_TRANSACTION)
        profile = _profile(req.charging_profile, c.id, now)
        st.profiles.install(dataclasses.replace(profile, transaction_id=None))
    return m.RemoteStartTransactionResponse(status="Accepted" if ok else "Rejected")


def _remote_stop(st: SimStation, req: m.RemoteStopTransactionRequest, now: float) -> Any:
    ok = st.remote_stop(str(req.transaction_id), now)
    return m.RemoteStopTransactionResponse(status="Accepted" if ok else "Rejected")


def _reset(st: SimStation, req: m.ResetRequest, now: float) -> Any:
    st.reset(now, "RemoteReset", "HardReset" if req.type == "Hard" else "SoftReset")
    return m.ResetResponse(status="Accepted")


def _availability(st: SimStation, req: m.ChangeAvailabilityRequest, now: float) -> Any:
    status: Any = st.availability(req.connector_id, req.type == "Operative", now)
    return m.ChangeAvailabilityResponse(status=status)


def _unlock(st: SimStation, req: m.UnlockConnectorRequest, now: float) -> Any:
    return m.UnlockConnectorResponse(
        status="Unlocked" if st.unlock(req.connector_id, now) else "NotSupported"
    )


def _profile(p: m.ChargingProfile, connector: int, now: float) -> Profile:
    schedule = p.charging_schedule
    return Profile(
        id=p.charging_profile_id,
        connector=connector,
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
        transaction_id=None if p.transaction_id is None else str(p.transaction_id),
    )


def _set_profile(st: SimStation, req: m.SetChargingProfileRequest, now: float) -> Any:
    profile = _profile(req.cs_charging_profiles, req.connector_id, now)
    c = st.connector(req.connector_id)
    if req.connector_id != 0 and c is None:
        return m.SetChargingProfileResponse(status="Rejected")
    if profile.purpose == "tx":  # 1.6 3.13.4: only within a transaction on that connector
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
    purpose = _PURPOSE.get(req.charging_profile_purpose or "")
    st.before_profiles_change(now)
    cleared = st.profiles.clear(req.id, req.connector_id, purpose, req.stack_level)
    st.profiles_changed(now)
    return m.ClearChargingProfileResponse(status="Accepted" if cleared else "Unknown")


def _composite(st: SimStation, req: m.GetCompositeScheduleRequest, now: float) -> Any:
    if req.connector_id != 0 and st.connector(req.connector_id) is None:
        return m.GetCompositeScheduleResponse(status="Rejected")
    unit = req.charging_rate_unit or "A"
    periods = st.composite(req.connector_id, req.duration, unit, now)
    return m.GetCompositeScheduleResponse(
        status="Accepted",
        connector_id=req.connector_id,
        schedule_start=wall(now),
        charging_schedule=m.ChargingSchedule(
            charging_rate_unit=unit,
            duration=req.duration,
            start_schedule=wall(now),
            charging_schedule_period=[
                m.ChargingSchedulePeriod(start_period=start, limit=limit)
                for start, limit in periods
            ],
        ),
    )


def _get_configuration(st: SimStation, req: m.GetConfigurationRequest, now: float) -> Any:
    config = {
        **st.config,  # the intervals as they are now: the boot's answer may have set one
        "HeartbeatInterval": str(int(st.heartbeat_s)),
        "MeterValueSampleInterval": str(int(st.meter_interval_s)),
    }
    keys = req.key or sorted(config)
    return m.GetConfigurationResponse(
        configuration_key=[
            m.KeyValue(key=k, readonly=not _KEYS.get(k, True), value=config[k])
            for k in keys
            if k in config
        ]
        or None,
        unknown_key=[k for k in keys if k not in config] or None,
    )


def _change_configuration(st: SimStation, req: m.ChangeConfigurationRequest, now: float) -> Any:
    if req.key not in st.config:
        return m.ChangeConfigurationResponse(status="NotSupported")
    if not _KEYS.get(req.key, True):
        return m.ChangeConfigurationResponse(status="Rejected")
    if req.key in ("HeartbeatInterval", "MeterValueSampleInterval"):
        try:
            seconds = int(req.value)
        except ValueError:
            return m.ChangeConfigurationResponse(status="Rejected")
        if seconds <= 0:
            return m.ChangeConfigurationResponse(status="Rejected")
        if req.key == "HeartbeatInterval":
            st.set_heartbeat(seconds, now)
        else:
            st.meter_interval_s = seconds
    st.config[req.key] = req.value
    return m.ChangeConfigurationResponse(status="Accepted")


def _trigger(st: SimStation, req: m.TriggerMessageRequest, now: float) -> Any:
    chosen = [c for c in st.connectors if req.connector_id in (None, c.id)]
    if req.connector_id is not None and not chosen:
        return m.TriggerMessageResponse(status="Rejected")
    what = req.requested_message
    if what == "BootNotification":
        st.send(Speaker16().boot(st))
    elif what == "Heartbeat":
        st.send(m.HeartbeatRequest())
    elif what == "StatusNotification":
        for c in chosen:
            st.resend_status(c, now)
    elif what == "MeterValues":
        for c in chosen:
            st.send_meter_now(c, now)
    elif what == "DiagnosticsStatusNotification":
        st.send(m.DiagnosticsStatusNotificationRequest(status="Idle"))
    else:
        st.send(m.FirmwareStatusNotificationRequest(status="Idle"))
    return m.TriggerMessageResponse(status="Accepted")


def _reserve(st: SimStation, req: m.ReserveNowRequest, now: float) -> Any:
    expires = epoch(req.expiry_date) or now
    status: Any = st.reserve(req.connector_id, req.id_tag, req.reservation_id, expires, now)
    return m.ReserveNowResponse(status=status)


def _cancel_reservation(st: SimStation, req: m.CancelReservationRequest, now: float) -> Any:
    ok = st.cancel_reservation(req.reservation_id, now)
    return m.CancelReservationResponse(status="Accepted" if ok else "Rejected")


def _send_local_list(st: SimStation, req: m.SendLocalListRequest, now: float) -> Any:
    st.local_list_version = req.list_version
    return m.SendLocalListResponse(status="Accepted")


def _local_list_version(st: SimStation, req: m.GetLocalListVersionRequest, now: float) -> Any:
    return m.GetLocalListVersionResponse(list_version=st.local_list_version)


def _extended_trigger(st: SimStation, req: m.ExtendedTriggerMessageRequest, now: float) -> Any:
    if req.requested_message == "SignChargePointCertificate":  # the simulator has no key pair
        return m.ExtendedTriggerMessageResponse(status="Rejected")
    if req.requested_message == "LogStatusNotification":
        st.send(m.LogStatusNotificationRequest(status="Idle"))
        return m.ExtendedTriggerMessageResponse(status="Accepted")
    what: Any = req.requested_message
    _trigger(
        st, m.TriggerMessageRequest(requested_message=what, connector_id=req.connector_id), now
    )
    return m.ExtendedTriggerMessageResponse(status="Accepted")


_HANDLERS: dict[str, Callable[[SimStation, Any, float], msgspec.Struct]] = {
    "RemoteStartTransaction": _remote_start,
    "RemoteStopTransaction": _remote_stop,
    "Reset": _reset,
    "ChangeAvailability": _availability,
    "UnlockConnector": _unlock,
    "SetChargingProfile": _set_profile,
    "ClearChargingProfile": _clear_profile,
    "GetCompositeSchedule": _composite,
    "GetConfiguration": _get_configuration,
    "ChangeConfiguration": _change_configuration,
    "TriggerMessage": _trigger,
    "ExtendedTriggerMessage": _extended_trigger,
    "ReserveNow": _reserve,
    "CancelReservation": _cancel_reservation,
    "SendLocalList": _send_local_list,
    "GetLocalListVersion": _local_list_version,
}
