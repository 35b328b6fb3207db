"""Charging schedules as the load balancer keeps them, and the SetChargingProfile payloads that
carry them: OCPP 1.6 (3.13, 5.16) and 2.0.1 (K01).

A :data:`Schedule` is absolute: the current (A per phase) from each moment on, the first moment
being when it was made. Kept that way, the schedule a station accepted can be compared with a
new one made later, and read at any moment (what the car may draw then).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from chargegrid.domain.site import EvseSlot

Schedule = list[tuple[datetime, float]]

TX_PROFILE_ID = 2000  # + EVSE id: the same id each time, so a new profile replaces the last
DEFAULT_PROFILE_ID = 1000
CHANGE_A = 0.1  # smaller changes are not sent
MAX_PERIODS = 24  # periods sent in one schedule: what stations take (ChargingScheduleMaxPeriods)
_SAME_MOMENT_S = 1.0  # moments after the first come from limits and prices: they do not drift


def value_at(schedule: Schedule | None, moment: datetime) -> float | None:
    """The current ``schedule`` gives at ``moment``: its first period's before it starts."""
    if not schedule:
        return None
    current = schedule[0][1]
    for start, value in schedule:
        if start > moment:
            break
        current = value
    return current


def same(new: Schedule, held: Schedule | None) -> bool:
    """The same schedule, but for changes below 0.1 A (its first moment is when it was made,
    the others must match to the second)."""
    if held is None or len(new) != len(held):
        return False
    for i, ((at_new, a_new), (at_held, a_held)) in enumerate(zip(new, held, strict=True)):
        if abs(a_new - a_held) >= CHANGE_A - 1e-9:
            return False
        if i and abs((at_new - at_held).total_seconds()) > _SAME_MOMENT_S:
            return False
    return True


def upper(a: Schedule, b: Schedule) -> Schedule:
    """The higher of two schedules at every moment (what a car may draw when its station may
    hold either)."""
    moments = sorted({t for t, _ in a} | {t for t, _ in b})
    out: Schedule = []
    for moment in moments:
        current = max(value_at(a, moment) or 0.0, value_at(b, moment) or 0.0)
        if not out or abs(out[-1][1] - current) > 1e-9:
            out.append((moment, current))
    return out


def capped(schedule: Schedule, periods: int = MAX_PERIODS) -> Schedule:
    """At most ``periods`` periods: the last one sent holds the lowest of those it stands for
    (the schedule is renewed before it is reached, and a station that loses its connection is
    held low rather than high)."""
    if len(schedule) <= periods:
        return schedule
    head = schedule[: periods - 1]
    rest = schedule[periods - 1 :]
    return [*head, (rest[0][0], min(current for _, current in rest))]


def lower_somewhere(new: Schedule, old: Schedule | None, now: datetime) -> bool:
    """Whether ``new`` gives less than ``old`` at some moment from ``now`` (no ``old``: the car
    may draw anything, so yes)."""
    if old is None:
        return True
    moments = sorted({now, *(t for t, _ in new if t > now), *(t for t, _ in old if t > now)})
    for moment in moments:
        before, after = value_at(old, moment), value_at(new, moment)
        if before is not None and after is not None and after < before - 1e-9:
            return True
    return False


def _step_down(current: float) -> float:
    """To the 0.1 A the wire carries, never up (16.6 stays 16.6; 16.66 is 16.6)."""
    return math.floor(current * 10 + 1e-6) / 10


def wire_schedule(schedule: Schedule, phases: int) -> dict[str, Any]:
    """A chargingSchedule: periods from the first moment, in whole seconds (a rise rounded up,
    a fall down); periods that fall on the same second keep the later current (periods must
    start at distinct offsets)."""
    start = schedule[0][0]
    periods: list[dict[str, Any]] = []
    for moment, current in schedule:
        seconds = (moment - start).total_seconds()
        rises = bool(periods) and _step_down(current) > periods[-1]["limit"]
        # a rise never comes early, a fall never late: a limit holds for all its time
        offset = max(0, math.ceil(seconds - 1e-6) if rises else math.floor(seconds + 1e-6))
        period = {"startPeriod": offset, "limit": _step_down(current), "numberPhases": phases}
        if periods and periods[-1]["startPeriod"] == offset:
            periods[-1] = period
        elif not periods or periods[-1]["limit"] != period["limit"]:
            periods.append(period)
    return {
        "startSchedule": start.isoformat(),
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": periods,
    }


def tx_profile(
    version: str,
    slot: EvseSlot,
    transaction_id: int,
    station_tx_id: str,
    schedule: Schedule,
    phases: int,
) -> dict[str, Any]:
    """SetChargingProfile with a TxProfile for the running transaction."""
    transaction: int | str = transaction_id if version == "1.6" else station_tx_id
    wire = wire_schedule(schedule, phases)
    return _set_profile(version, slot, TX_PROFILE_ID, "TxProfile", wire, transaction)


def default_profile(version: str, slot: EvseSlot, now: datetime) -> dict[str, Any]:
    """SetChargingProfile with a TxDefaultProfile at the EVSE's fallback current: what a car
    that plugs in draws until its TxProfile comes, and what an offline station keeps to."""
    wire = wire_schedule([(now, slot.fallback_a)], len(slot.wiring.phases))
    return _set_profile(version, slot, DEFAULT_PROFILE_ID, "TxDefaultProfile", wire, None)


def _set_profile(
    version: str,
    slot: EvseSlot,
    base_id: int,
    purpose: str,
    wire: dict[str, Any],
    transaction: int | str | None,
) -> dict[str, Any]:
    """The SetChargingProfile request of ``version`` (1.6 csChargingProfiles on a connector,
    2.0.1 chargingProfile on an EVSE), its profile id the same for each EVSE every time."""
    profile_id = base_id + slot.evse_id
    profile: dict[str, Any] = {
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
    }
    if transaction is not None:
        profile["transactionId"] = transaction
    if version == "1.6":
        profile = {"chargingProfileId": profile_id, **profile, "chargingSchedule": wire}
        return {"connectorId": slot.evse_id, "csChargingProfiles": profile}
    schedules = [{"id": profile_id, **wire}]
    profile = {"id": profile_id, **profile, "chargingSchedule": schedules}
    return {"evseId": slot.evse_id, "chargingProfile": profile}


COMPOSITE_WINDOW_S = 300


def composite_request(version: str, evse_id: int) -> dict[str, Any]:
    """GetCompositeSchedule for the next five minutes of an EVSE, in amperes."""
    if version == "1.6":
        return {"connectorId": evse_id, "duration": COMPOSITE_WINDOW_S, "chargingRateUnit": "A"}
    return {"evseId": evse_id, "duration": COMPOSITE_WINDOW_S, "chargingRateUnit": "A"}


def composite_limit(response: dict[str, Any], voltage_v: float, phases: int) -> float | None:
    """The highest current (A per phase) of a GetCompositeSchedule answer (1.6
    ``chargingSchedule``, 2.0.1 ``schedule``), a limit in W read over ``phases`` at
    ``voltage_v``; None when the answer holds no schedule or is not one."""
    if response.get("status") != "Accepted":
        return None
    schedule = response.get("chargingSchedule") or response.get("schedule")
    if not isinstance(schedule, dict):
        return None
    periods = schedule.get("chargingSchedulePeriod")
    if not isinstance(periods, list) or not periods:
        return None
    unit = schedule.get("chargingRateUnit", "A")
    highest: float | None = None
    for period in periods:
        limit = period.get("limit") if isinstance(period, dict) else None
        if isinstance(limit, bool) or not isinstance(limit, int | float):
            return None
        if not 0 <= limit < 1e12:  # no current or power is larger: a huge int is no float
            return None
        current = float(limit)
        if unit == "W":
            used = period.get("numberPhases")
            used = used if isinstance(used, int) and 1 <= used <= 3 else phases
            current = current / (voltage_v * used)
        highest = current if highest is None else max(highest, current)
    return highest
