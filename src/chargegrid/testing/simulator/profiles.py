"""Charging profiles as a simulated station keeps and obeys them, for both OCPP versions.

OCPP 1.6 section 3.13 and OCPP 2.0.1 Part 2 K01 / K08, reduced to what moves a car's power:

* A profile has a purpose: the station's maximum (1.6 ChargePointMaxProfile, 2.0.1
  ChargingStationMaxProfile), a default for new transactions (TxDefaultProfile), or one
  transaction's (TxProfile). A new profile replaces one with the same id, or with the same
  connector, purpose and stack level.
* Within a purpose the highest stack level in force wins. A TxProfile overrides the
  TxDefaultProfile; the station's maximum caps both. Connector 0 means the whole station (for a
  default: every connector).
* A schedule's origin is its ``startSchedule``; without one, the start of the transaction
  (Relative) or the moment the profile arrived. A profile is in force from its first period to
  its ``duration``, between ``validFrom`` and ``validTo``; Recurring ones repeat daily or weekly.
* Limits in A become W at the station's voltage and the period's number of phases.

Times are seconds (the caller's clock, as everywhere in the simulator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Purpose = Literal["max", "default", "tx"]

_RECUR_S = {"Daily": 86_400.0, "Weekly": 604_800.0}


@dataclass(frozen=True, slots=True)
class Period:
    start_s: float
    limit: float
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    connector: int
    purpose: Purpose
    stack_level: int
    unit: str  # "A" or "W"
    periods: tuple[Period, ...]
    received_at: float
    kind: str = "Absolute"  # Absolute, Relative, Recurring
    start: float | None = None
    duration: float | None = None
    valid_from: float | None = None
    valid_to: float | None = None
    recurrency: str | None = None
    transaction_id: str | None = None
    raw: object = field(default=None, compare=False)  # the message's profile, as received

    def origin(self, now: float, tx_start: float | None) -> float:
        if self.kind == "Relative":
            return tx_start if tx_start is not None else now
        origin = self.start if self.start is not None else self.received_at
        cycle = _RECUR_S.get(self.recurrency or "")
        if self.kind == "Recurring" and cycle and now > origin:
            origin += math.floor((now - origin) / cycle) * cycle
        return origin

    def period_at(self, now: float, tx_start: float | None) -> Period | None:
        """The period in force at ``now``, or None when the profile is not in force."""
        if self.valid_from is not None and now < self.valid_from:
            return None
        if self.valid_to is not None and now >= self.valid_to:
            return None
        elapsed = now - self.origin(now, tx_start)
        if elapsed < 0 or (self.duration is not None and elapsed >= self.duration):
            return None
        found = None
        for period in self.periods:
            if period.start_s <= elapsed:
                found = period
        return found

    def boundaries(self, now: float, tx_start: float | None) -> list[float]:
        """The moments from ``now`` on at which this profile's limit may change."""
        origin = self.origin(now, tx_start)
        times = [origin + p.start_s for p in self.periods]
        if self.duration is not None:
            times.append(origin + self.duration)
        times += [t for t in (self.valid_from, self.valid_to) if t is not None]
        return [t for t in times if t > now]


@dataclass(slots=True)
class Profiles:
    """The profiles a station holds, and the limit they set on each connector."""

    voltage: float = 230.0
    phases: int = 3
    items: dict[int, Profile] = field(default_factory=dict)

    def install(self, profile: Profile) -> None:
        for old in list(self.items.values()):
            same_slot = (old.connector, old.purpose, old.stack_level) == (
                profile.connector,
                profile.purpose,
                profile.stack_level,
            )
            if old.id == profile.id or same_slot:
                del self.items[old.id]
        self.items[profile.id] = profile

    def clear(
        self,
        profile_id: int | None = None,
        connector: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """Remove what matches every criterion given; True if something was removed."""
        gone = [
            p.id
            for p in self.items.values()
            if (profile_id is None or p.id == profile_id)
            and (connector is None or p.connector == connector)
            and (purpose is None or p.purpose == purpose)
            and (stack_level is None or p.stack_level == stack_level)
        ]
        for pid in gone:
            del self.items[pid]
        return bool(gone)

    def end_transaction(self, transaction_id: str) -> None:
        """A TxProfile ends with its transaction (1.6 3.13.4, 2.0.1 K01.FR.05)."""
        for pid in [p.id for p in self.items.values() if p.purpose == "tx"]:
            tx = self.items[pid].transaction_id
            if tx is None or tx == transaction_id:
                del self.items[pid]

    def watts(self, period: Period, unit: str) -> float:
        if unit == "W":
            return period.limit
        return period.limit * self.voltage * (period.phases or self.phases)

    def _best(
        self, purpose: Purpose, connectors: tuple[int, ...], now: float, tx_start: float | None
    ) -> float | None:
        best: tuple[int, float] | None = None
        for p in self.items.values():
            if p.purpose != purpose or p.connector not in connectors:
                continue
            period = p.period_at(now, tx_start)
            if period is not None and (best is None or p.stack_level > best[0]):
                best = (p.stack_level, self.watts(period, p.unit))
        return None if best is None else best[1]

    def limit_w(self, connector: int, now: float, tx_start: float | None = None) -> float:
        """What the profiles let ``connector`` draw at ``now``, W (infinite without any)."""
        limit = math.inf
        for scope in ((0,), (connector,)):
            cap = self._best("max", scope, now, tx_start)
            if cap is not None:
                limit = min(limit, cap)
        own = self._best("tx", (connector,), now, tx_start) if tx_start is not None else None
        if own is None:
            own = self._best("default", (connector,), now, tx_start)
        if own is None:
            own = self._best("default", (0,), now, tx_start)
        return limit if own is None else min(limit, own)

    def composite(
        self, connector: int, now: float, duration_s: float, tx_start: float | None, ceiling: float
    ) -> list[tuple[float, float]]:
        """(offset from now in s, limit in W) pairs of the limit over the next ``duration_s``,
        each where it changes; ``ceiling`` stands where no profile limits."""
        moments = {now}
        for p in self.items.values():
            moments.update(t for t in p.boundaries(now, tx_start) if t < now + duration_s)
        out: list[tuple[float, float]] = []
        for t in sorted(moments):
            limit = min(ceiling, self.limit_w(connector, t, tx_start))
            if not out or out[-1][1] != limit:
                out.append((t - now, limit))
        return out
