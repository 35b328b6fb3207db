"""OCPP 1.6 messages to domain values and back. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

from chargegrid.domain.model import (
    Authorization,
    AuthorizationStatus,
    MeterReading,
    SampledValue,
    StatusChange,
)
from chargegrid.protocols.ocpp16 import messages as m
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.protocols.ocppj.times import utc

#: 1.6 has no Unknown; an unknown idTag is Invalid (OCPP 1.6 7.2 AuthorizationStatus).
_AUTH_STATUS: dict[AuthorizationStatus, str] = {
    AuthorizationStatus.ACCEPTED: "Accepted",
    AuthorizationStatus.BLOCKED: "Blocked",
    AuthorizationStatus.EXPIRED: "Expired",
    AuthorizationStatus.INVALID: "Invalid",
    AuthorizationStatus.CONCURRENT_TX: "ConcurrentTx",
    AuthorizationStatus.UNKNOWN: "Invalid",
}


def id_tag_info(auth: Authorization) -> m.IdTagInfo:
    """OCPP 1.6 7.29 IdTagInfo."""
    return m.IdTagInfo(
        status=_AUTH_STATUS[auth.status],  # type: ignore[arg-type]
        expiry_date=utc(auth.expires_at),
        parent_id_tag=auth.group,
    )


def readings(
    values: Sequence[m.MeterValue] | Sequence[m.StopTransactionMeterValue] | None,
) -> list[MeterReading]:
    """OCPP 1.6 7.33 MeterValue / 7.45 SampledValue, every field kept."""
    result = []
    for mv in values or ():
        sampled = tuple(_sampled(sv) for sv in mv.sampled_value)
        result.append(MeterReading(timestamp=utc(mv.timestamp), values=sampled))
    return result


def _sampled(sv: m.SampledValue | m.StopTransactionSampledValue) -> SampledValue:
    signed = sv.format == "SignedData"
    try:
        value = Decimal(0) if signed else Decimal(sv.value)
    except InvalidOperation as exc:
        raise OcppError(
            ErrorKind.PROPERTY_CONSTRAINT, f"sampledValue.value {sv.value!r} is not a number"
        ) from exc
    return SampledValue(
        value=value,
        measurand=sv.measurand or "Energy.Active.Import.Register",
        context=sv.context,
        phase=sv.phase,
        location=sv.location,
        unit=sv.unit or ("Wh" if sv.measurand in (None, "Energy.Active.Import.Register") else None),
        signed_data=sv.value if signed else None,
    )


def status_change(station_id: str, req: m.StatusNotificationRequest, now: datetime) -> StatusChange:
    """OCPP 1.6 5.17: connector 0 is the whole charge point (evse 0)."""
    return StatusChange(
        station_id=station_id,
        evse_id=req.connector_id,
        connector_id=req.connector_id,
        status=req.status,
        timestamp=utc(req.timestamp) or now,
        error_code=None if req.error_code == "NoError" else req.error_code,
        info=req.info,
        vendor_error_code=req.vendor_error_code,
    )
