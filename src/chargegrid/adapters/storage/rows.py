"""Domain objects to table rows and back (the columns are in :mod:`.tables`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Row

from chargegrid.domain.metering import ENERGY_REGISTER, energy_register_wh
from chargegrid.domain.model import (
    AuthorizationStatus,
    ConfigValue,
    IdToken,
    LocalListEntry,
    MeterReading,
    Registration,
    SampledValue,
    Station,
    StatusChange,
    TokenKind,
    Transaction,
    TransactionState,
)
from chargegrid.service.ports import CommandRecord, NewTransaction

Values = dict[str, Any]


def station_values(station: Station) -> Values:
    return {
        "id": station.id,
        "registration": station.registration.value,
        "ocpp_version": station.ocpp_version,
        "vendor": station.vendor,
        "model": station.model,
        "serial_number": station.serial_number,
        "firmware_version": station.firmware_version,
        "boot_reason": station.boot_reason,
        "online": station.online,
        "last_seen": station.last_seen,
        "password_hash": station.password_hash,
        "pending_password_hash": station.pending_password_hash,
        "lenient": sorted(station.lenient),
        "latitude": station.latitude,
        "longitude": station.longitude,
        "location": station.location,
        "security_profile": station.security_profile,
    }


def to_station(row: Row[Any]) -> Station:
    return Station(
        id=row.id,
        registration=Registration(row.registration),
        ocpp_version=row.ocpp_version,
        vendor=row.vendor,
        model=row.model,
        serial_number=row.serial_number,
        firmware_version=row.firmware_version,
        boot_reason=row.boot_reason,
        online=row.online,
        last_seen=row.last_seen,
        password_hash=row.password_hash,
        pending_password_hash=row.pending_password_hash,
        lenient=frozenset(row.lenient),
        latitude=row.latitude,
        longitude=row.longitude,
        location=row.location,
        security_profile=row.security_profile,
    )


def status_values(change: StatusChange) -> Values:
    return {
        "station_id": change.station_id,
        "evse_id": change.evse_id,
        "connector_id": change.connector_id,
        "status": change.status,
        "timestamp": change.timestamp,
        "error_code": change.error_code,
        "info": change.info,
        "vendor_error_code": change.vendor_error_code,
    }


def to_status(row: Row[Any]) -> StatusChange:
    return StatusChange(
        station_id=row.station_id,
        evse_id=row.evse_id,
        connector_id=row.connector_id,
        status=row.status,
        timestamp=row.timestamp,
        error_code=row.error_code,
        info=row.info,
        vendor_error_code=row.vendor_error_code,
    )


def token_values(token: IdToken) -> Values:
    return {
        "value": token.value,
        "kind": token.kind.value,
        "token_group": token.group,
        "expires_at": token.expires_at,
        "blocked": token.blocked,
        "allow_concurrent": token.allow_concurrent,
        "owner": token.owner,
    }


def to_token(row: Row[Any]) -> IdToken:
    return IdToken(
        value=row.value,
        kind=TokenKind(row.kind),
        group=row.token_group,
        expires_at=row.expires_at,
        blocked=row.blocked,
        allow_concurrent=row.allow_concurrent,
        owner=row.owner,
    )


def entry_values(station_id: str, entry: LocalListEntry) -> Values:
    assert entry.status is not None  # removals are not stored
    return {
        "station_id": station_id,
        "id_token": entry.id_token,
        "status": entry.status.value,
        "expires_at": entry.expires_at,
        "token_group": entry.group,
    }


def to_entry(row: Row[Any]) -> LocalListEntry:
    return LocalListEntry(
        id_token=row.id_token,
        status=AuthorizationStatus(row.status),
        expires_at=row.expires_at,
        group=row.token_group,
    )


def new_transaction_values(new: NewTransaction) -> Values:
    return {
        "station_id": new.station_id,
        "station_tx_id": new.station_tx_id,
        "evse_id": new.evse_id,
        "connector_id": new.connector_id,
        "id_token": new.id_token,
        "started_at": new.started_at,
        "meter_start_wh": new.meter_start_wh,
        "state": TransactionState.ACTIVE.value,
        "reservation_id": new.reservation_id,
        "charging_state": new.charging_state,
    }


def transaction_values(tx: Transaction) -> Values:
    """Every column but ``id``."""
    return {
        "station_id": tx.station_id,
        "station_tx_id": tx.station_tx_id,
        "evse_id": tx.evse_id,
        "connector_id": tx.connector_id,
        "id_token": tx.id_token,
        "started_at": tx.started_at,
        "meter_start_wh": tx.meter_start_wh,
        "state": tx.state.value,
        "stopped_at": tx.stopped_at,
        "meter_stop_wh": tx.meter_stop_wh,
        "stop_reason": tx.stop_reason,
        "reservation_id": tx.reservation_id,
        "charging_state": tx.charging_state,
        "last_meter_wh": tx.last_meter_wh,
    }


def to_transaction(row: Row[Any]) -> Transaction:
    return Transaction(
        id=row.id,
        station_id=row.station_id,
        station_tx_id=row.station_tx_id,
        evse_id=row.evse_id,
        connector_id=row.connector_id,
        id_token=row.id_token,
        started_at=row.started_at,
        meter_start_wh=row.meter_start_wh,
        state=TransactionState(row.state),
        stopped_at=row.stopped_at,
        meter_stop_wh=row.meter_stop_wh,
        stop_reason=row.stop_reason,
        reservation_id=row.reservation_id,
        charging_state=row.charging_state,
        last_meter_wh=row.last_meter_wh,
    )


class _Sample(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """A SampledValue as stored: short keys, defaults left out, the value as exact text."""

    v: str
    m: str = ENERGY_REGISTER
    c: str | None = None
    p: str | None = None
    loc: str | None = None
    u: str | None = None
    x: int = 0
    sd: str | None = None


_samples_decoder = msgspec.json.Decoder(list[_Sample])


def meter_rows(
    station_id: str,
    transaction_id: int | None,
    evse_id: int,
    connector_id: int,
    readings: Iterable[MeterReading],
) -> list[Values]:
    """One row per reading, its sampled values as JSON, its energy register extracted."""
    return [
        {
            "station_id": station_id,
            "transaction_id": transaction_id,
            "evse_id": evse_id,
            "connector_id": connector_id,
            "timestamp": reading.timestamp,
            "energy_wh": energy_register_wh((reading,)),
            "sampled_values": msgspec.json.encode(
                [
                    _Sample(
                        str(sv.value),
                        sv.measurand,
                        sv.context,
                        sv.phase,
                        sv.location,
                        sv.unit,
                        sv.multiplier,
                        sv.signed_data,
                    )
                    for sv in reading.values
                ]
            ).decode(),
        }
        for reading in readings
    ]


def to_readings(rows: Sequence[Row[Any]]) -> list[MeterReading]:
    """Readings from rows sorted by timestamp; rows of the same time make one reading."""
    readings: list[MeterReading] = []
    for row in rows:
        values = tuple(
            SampledValue(Decimal(s.v), s.m, s.c, s.p, s.loc, s.u, s.x, s.sd)
            for s in _samples_decoder.decode(row.sampled_values)
        )
        if readings and readings[-1].timestamp == row.timestamp:
            readings[-1] = MeterReading(row.timestamp, readings[-1].values + values)
        else:
            readings.append(MeterReading(row.timestamp, values))
    return readings


def config_values(value: ConfigValue) -> Values:
    """The row of a setting; the unique key stores "no instance / EVSE / connector" as "" / 0."""
    return {
        "station_id": value.station_id,
        "component": value.component,
        "evse_id": value.evse_id or 0,
        "connector_id": value.connector_id or 0,
        "variable": value.variable,
        "instance": value.instance or "",
        "attribute": value.attribute,
        "value": value.value,
        "readonly": value.readonly,
        "extra": value.extra,
    }


def to_config(row: Row[Any]) -> ConfigValue:
    return ConfigValue(
        station_id=row.station_id,
        component=row.component,
        variable=row.variable,
        value=row.value,
        attribute=row.attribute,
        instance=row.instance or None,
        evse_id=row.evse_id or None,
        connector_id=row.connector_id or None,
        readonly=row.readonly,
        extra=row.extra,
    )


def command_values(record: CommandRecord) -> Values:
    return {
        "station_id": record.station_id,
        "action": record.action,
        "request": record.request,
        "sent_at": record.sent_at,
        "outcome": record.outcome,
        "response": record.response,
        "error_code": record.error_code,
        "error_description": record.error_description,
        "answered_at": record.answered_at,
    }


def to_command(row: Row[Any]) -> CommandRecord:
    return CommandRecord(
        station_id=row.station_id,
        action=row.action,
        request=row.request,
        sent_at=row.sent_at,
        outcome=row.outcome,
        response=row.response,
        error_code=row.error_code,
        error_description=row.error_description,
        answered_at=row.answered_at,
    )
