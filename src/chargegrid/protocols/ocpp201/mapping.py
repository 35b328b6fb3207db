"""OCPP 2.0.1 messages to domain values and back. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from chargegrid.domain.model import (
    Authorization,
    AuthorizationStatus,
    ConfigValue,
    MeterReading,
    SampledValue,
    StatusChange,
)
from chargegrid.protocols.ocpp201 import messages as m
from chargegrid.protocols.ocppj.times import utc

#: 2.0.1 tells a token the CSMS does not know (the domain's INVALID) as Unknown (C01.FR.xx).
_AUTH_STATUS: dict[AuthorizationStatus, m.AuthorizationStatusEnumType] = {
    AuthorizationStatus.ACCEPTED: "Accepted",
    AuthorizationStatus.BLOCKED: "Blocked",
    AuthorizationStatus.EXPIRED: "Expired",
    AuthorizationStatus.INVALID: "Unknown",
    AuthorizationStatus.CONCURRENT_TX: "ConcurrentTx",
    AuthorizationStatus.UNKNOWN: "Unknown",
}


def id_token_info(auth: Authorization) -> m.IdTokenInfoType:
    """OCPP 2.0.1 Part 2 2.29 IdTokenInfoType."""
    group = m.IdTokenType(id_token=auth.group, type="Central") if auth.group else None
    return m.IdTokenInfoType(
        status=_AUTH_STATUS[auth.status],
        cache_expiry_date_time=utc(auth.expires_at) if auth.expires_at else None,
        group_id_token=group,
    )


def readings(values: Sequence[m.MeterValueType] | None) -> list[MeterReading]:
    """OCPP 2.0.1 2.43 MeterValueType / 2.55 SampledValueType, every field kept."""
    result = []
    for mv in values or ():
        sampled = tuple(_sampled(sv) for sv in mv.sampled_value)
        result.append(MeterReading(timestamp=utc(mv.timestamp), values=sampled))
    return result


def _sampled(sv: m.SampledValueType) -> SampledValue:
    unit = sv.unit_of_measure
    measurand = sv.measurand or "Energy.Active.Import.Register"
    return SampledValue(
        value=Decimal(repr(sv.value)) if isinstance(sv.value, float) else Decimal(sv.value),
        measurand=measurand,
        context=sv.context,
        phase=sv.phase,
        location=sv.location,
        unit=(unit.unit if unit and unit.unit else None)
        or ("Wh" if measurand.startswith("Energy.Active") else None),
        multiplier=(unit.multiplier or 0) if unit else 0,
        signed_data=sv.signed_meter_value.signed_meter_data if sv.signed_meter_value else None,
    )


def status_change(station_id: str, req: m.StatusNotificationRequest) -> StatusChange:
    """OCPP 2.0.1 G01."""
    return StatusChange(
        station_id=station_id,
        evse_id=req.evse_id,
        connector_id=req.connector_id,
        status=req.connector_status,
        timestamp=utc(req.timestamp),
    )


def component_name(component: m.ComponentType) -> str:
    """How a 2.0.1 component is named in the configuration store: ``name`` or ``name/instance``."""
    return component.name + (f"/{component.instance}" if component.instance else "")


def report_values(station_id: str, data: Sequence[m.ReportDataType] | None) -> list[ConfigValue]:
    """OCPP 2.0.1 B07/B08 NotifyReport: one value per variable attribute."""
    values = []
    for item in data or ():
        evse = item.component.evse
        chars = item.variable_characteristics
        for attr in item.variable_attribute:
            extra: dict[str, object] = {
                "mutability": attr.mutability or "ReadWrite",
                "persistent": attr.persistent,
                "constant": attr.constant,
            }
            if chars is not None:
                extra.update(
                    data_type=chars.data_type,
                    unit=chars.unit,
                    min=chars.min_limit,
                    max=chars.max_limit,
                    values_list=chars.values_list,
                    supports_monitoring=chars.supports_monitoring,
                )
            values.append(
                ConfigValue(
                    station_id=station_id,
                    component=component_name(item.component),
                    variable=item.variable.name,
                    instance=item.variable.instance,
                    value=attr.value,
                    attribute=attr.type or "Actual",
                    evse_id=evse.id if evse else None,
                    connector_id=evse.connector_id if evse else None,
                    readonly=attr.mutability == "ReadOnly",
                    extra={k: v for k, v in extra.items() if v is not None},
                )
            )
    return values
