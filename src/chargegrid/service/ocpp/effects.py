"""What an answered CSMS-initiated operation changes in what the CSMS knows.

Keyed by (OCPP version, action). Only accepted changes are applied: a station that answers
Rejected keeps its old list, reservation or setting, and so do we.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from msgspec.structs import replace

from chargegrid.domain.model import (
    AuthorizationStatus,
    ConfigValue,
    LocalListEntry,
    Reservation,
)
from chargegrid.domain.redaction import REDACTED, is_secret_setting
from chargegrid.protocols.ocpp16 import messages as m16
from chargegrid.protocols.ocpp201 import messages as m201
from chargegrid.protocols.ocpp201.mapping import component_name
from chargegrid.protocols.ocppj.times import utc
from chargegrid.service.ports import Store

Effect = Callable[[Store, str, Any, Any], Awaitable[None]]


def _kept(name: str, value: str | None) -> str | None:
    """What the configuration table keeps of a value: never a password (:mod:`.redaction`)."""
    return REDACTED if value is not None and is_secret_setting(name) else value


# --- OCPP 1.6 -------------------------------------------------------------------------------


async def _get_configuration_16(
    store: Store,
    station_id: str,
    req: m16.GetConfigurationRequest,
    res: m16.GetConfigurationResponse,
) -> None:
    values = [
        ConfigValue(station_id, "", kv.key, _kept(kv.key, kv.value), readonly=kv.readonly)
        for kv in res.configuration_key or ()
    ]
    if values:
        await store.save_config(station_id, values)


async def _change_configuration_16(
    store: Store,
    station_id: str,
    req: m16.ChangeConfigurationRequest,
    res: m16.ChangeConfigurationResponse,
) -> None:
    if res.status in ("Accepted", "RebootRequired"):
        value = _kept(req.key, req.value)
        await store.save_config(station_id, [ConfigValue(station_id, "", req.key, value)])


async def _send_local_list_16(
    store: Store, station_id: str, req: m16.SendLocalListRequest, res: m16.SendLocalListResponse
) -> None:
    if res.status != "Accepted":
        return
    entries = [
        LocalListEntry(
            e.id_tag,
            AuthorizationStatus(e.id_tag_info.status) if e.id_tag_info else None,
            utc(e.id_tag_info.expiry_date) if e.id_tag_info else None,
            e.id_tag_info.parent_id_tag if e.id_tag_info else None,
        )
        for e in req.local_authorization_list or ()
    ]
    await store.save_local_list(
        station_id, req.list_version, entries, full=req.update_type == "Full"
    )


async def _reserve_now_16(
    store: Store, station_id: str, req: m16.ReserveNowRequest, res: m16.ReserveNowResponse
) -> None:
    if res.status == "Accepted":
        await store.save_reservation(
            Reservation(
                req.reservation_id,
                station_id,
                req.connector_id,
                req.id_tag,
                utc(req.expiry_date) or datetime.now(UTC),
                status="Accepted",
            )
        )


async def _cancel_reservation(store: Store, station_id: str, req: Any, res: Any) -> None:
    if res.status != "Accepted":
        return
    reservation = await store.get_reservation(req.reservation_id)
    if reservation is not None and reservation.station_id == station_id:
        await store.save_reservation(replace(reservation, status="Cancelled"))


# --- OCPP 2.0.1 ------------------------------------------------------------------------------


async def _get_variables_201(
    store: Store, station_id: str, req: m201.GetVariablesRequest, res: m201.GetVariablesResponse
) -> None:
    values = [
        ConfigValue(
            station_id,
            component_name(r.component),
            r.variable.name,
            _kept(r.variable.name, r.attribute_value),
            attribute=r.attribute_type or "Actual",
            instance=r.variable.instance,
            evse_id=r.component.evse.id if r.component.evse else None,
            connector_id=r.component.evse.connector_id if r.component.evse else None,
        )
        for r in res.get_variable_result
        if r.attribute_status == "Accepted"
    ]
    if values:
        await store.save_config(station_id, values)


async def _set_variables_201(
    store: Store, station_id: str, req: m201.SetVariablesRequest, res: m201.SetVariablesResponse
) -> None:
    wanted = {
        (
            component_name(d.component),
            d.variable.name,
            d.variable.instance,
            d.attribute_type or "Actual",
        ): d
        for d in req.set_variable_data
    }
    values = []
    for r in res.set_variable_result:
        if r.attribute_status not in ("Accepted", "RebootRequired"):
            continue
        key = (
            component_name(r.component),
            r.variable.name,
            r.variable.instance,
            r.attribute_type or "Actual",
        )
        data = wanted.get(key)
        if data is None:
            continue
        evse = r.component.evse
        values.append(
            ConfigValue(
                station_id,
                key[0],
                key[1],
                _kept(key[1], data.attribute_value),
                attribute=key[3],
                instance=key[2],
                evse_id=evse.id if evse else None,
                connector_id=evse.connector_id if evse else None,
            )
        )
    if values:
        await store.save_config(station_id, values)


async def _send_local_list_201(
    store: Store, station_id: str, req: m201.SendLocalListRequest, res: m201.SendLocalListResponse
) -> None:
    if res.status != "Accepted":
        return
    entries = [
        LocalListEntry(
            e.id_token.id_token,
            AuthorizationStatus(e.id_token_info.status)
            if e.id_token_info and e.id_token_info.status in _AUTH_VALUES
            else (AuthorizationStatus.INVALID if e.id_token_info else None),
            utc(e.id_token_info.cache_expiry_date_time) if e.id_token_info else None,
            e.id_token_info.group_id_token.id_token
            if e.id_token_info and e.id_token_info.group_id_token
            else None,
        )
        for e in req.local_authorization_list or ()
    ]
    await store.save_local_list(
        station_id, req.version_number, entries, full=req.update_type == "Full"
    )


async def _reserve_now_201(
    store: Store, station_id: str, req: m201.ReserveNowRequest, res: m201.ReserveNowResponse
) -> None:
    if res.status == "Accepted":
        await store.save_reservation(
            Reservation(
                req.id,
                station_id,
                req.evse_id,
                req.id_token.id_token,
                utc(req.expiry_date_time) or datetime.now(UTC),
                connector_type=req.connector_type,
                status="Accepted",
            )
        )


_AUTH_VALUES = {s.value for s in AuthorizationStatus}

EFFECTS: Mapping[tuple[str, str], Effect] = {
    ("1.6", "GetConfiguration"): _get_configuration_16,
    ("1.6", "ChangeConfiguration"): _change_configuration_16,
    ("1.6", "SendLocalList"): _send_local_list_16,
    ("1.6", "ReserveNow"): _reserve_now_16,
    ("1.6", "CancelReservation"): _cancel_reservation,
    ("2.0.1", "GetVariables"): _get_variables_201,
    ("2.0.1", "SetVariables"): _set_variables_201,
    ("2.0.1", "SendLocalList"): _send_local_list_201,
    ("2.0.1", "ReserveNow"): _reserve_now_201,
    ("2.0.1", "CancelReservation"): _cancel_reservation,
}
