"""Capacity forecasts as limits a load balancer can apply: one :class:`CapacityBlock` per
forecasted block, in amperes or watts.

Conversions (units as forecasted-block-unit.json names them):

* ``A``: amperes, kept. ``W``: watts, kept. ``KW``: x 1000 W.
* ``WH`` and ``KWH``: energy over the block, turned into the average power that uses it up in
  the block's length (kWh x 1000 / hours). A block whose end is not after its start has no
  length: :class:`OscpError` (400).

Phases: ``ONE``, ``TWO`` and ``THREE`` are the site phases ``L1``, ``L2``, ``L3`` (the names of
:data:`chargegrid.domain.site.SITE_PHASES`). ``ALL`` is None: a current limit then holds on each
phase, a power limit for the phases together (as :class:`chargegrid.domain.balancing.CircuitLimit`
reads ``limit_a`` and ``limit_w``). ``UNKNOWN`` is read as ``ALL``, the safe reading: a
current limit on one unknown phase is kept if kept on each, a power limit on one phase is kept
if kept on their sum.

The forecast's ``type`` says what the blocks are: a limit (CONSUMPTION, GENERATION, and the
FALLBACK_ ones while offline) or a target (OPTIMUM); the blocks do not repeat it.

:func:`forecasted_block` goes the other way, for what the Flexibility Provider sends
(AdjustGroupCapacityForecast, GroupCapacityComplianceError): a limit in ``A`` or ``W`` on a
site phase (``L1``: ``ONE``) or on all of them (``ALL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from chargegrid.protocols.oscp.datatypes import ForecastedBlock, ForecastedBlockUnit, PhaseIndicator
from chargegrid.protocols.oscp.errors import BAD_REQUEST, OscpError
from chargegrid.protocols.oscp.messages import (
    AdjustGroupCapacityForecast,
    UpdateGroupCapacityForecast,
)

__all__ = ["CapacityBlock", "capacity_block", "capacity_blocks", "forecasted_block"]

SitePhase = Literal["L1", "L2", "L3"]
_PHASES: dict[PhaseIndicator, SitePhase | None] = {
    PhaseIndicator.ONE: "L1",
    PhaseIndicator.TWO: "L2",
    PhaseIndicator.THREE: "L3",
    PhaseIndicator.ALL: None,
    PhaseIndicator.UNKNOWN: None,
}
_WATTS = {ForecastedBlockUnit.W: 1.0, ForecastedBlockUnit.KW: 1000.0}
_WATT_HOURS = {ForecastedBlockUnit.WH: 1.0, ForecastedBlockUnit.KWH: 1000.0}


@dataclass(frozen=True, slots=True)
class CapacityBlock:
    """``limit`` in ``unit`` (``"A"`` or ``"W"``) from ``start`` to ``end``, on ``phase``
    (None: all phases)."""

    start: datetime
    end: datetime
    phase: SitePhase | None
    limit: float
    unit: Literal["A", "W"]


def capacity_blocks(
    forecast: UpdateGroupCapacityForecast | AdjustGroupCapacityForecast,
) -> list[CapacityBlock]:
    """The forecast's blocks as limits in A or W, by start time then phase."""
    out = [capacity_block(block) for block in forecast.forecasted_blocks]
    return sorted(out, key=lambda b: (b.start, b.phase or ""))


def forecasted_block(
    limit: float,
    unit: Literal["A", "W"],
    phase: SitePhase | None,
    start: datetime,
    end: datetime,
) -> ForecastedBlock:
    """A limit of ``limit`` ``unit`` on ``phase`` (None: all) from ``start`` to ``end`` as a
    forecasted block; :func:`capacity_block` of it gives it back."""
    indicator = next(k for k, v in _PHASES.items() if v == phase)
    return ForecastedBlock(
        capacity=limit,
        phase=indicator,
        unit=ForecastedBlockUnit(unit),
        start_time=start,
        end_time=end,
    )


def capacity_block(block: ForecastedBlock) -> CapacityBlock:
    """One forecasted block as a limit in A or W; :class:`OscpError` (400) when it has no
    length."""
    seconds = (block.end_time - block.start_time).total_seconds()
    if seconds <= 0:
        raise OscpError(
            f"a forecasted block ends ({block.end_time.isoformat()}) at or before it starts "
            f"({block.start_time.isoformat()})",
            BAD_REQUEST,
        )
    phase = _PHASES[block.phase]
    if block.unit is ForecastedBlockUnit.A:
        return CapacityBlock(block.start_time, block.end_time, phase, block.capacity, "A")
    if block.unit in _WATTS:
        watts = block.capacity * _WATTS[block.unit]
    else:
        watts = block.capacity * _WATT_HOURS[block.unit] * 3600.0 / seconds
    return CapacityBlock(block.start_time, block.end_time, phase, watts, "W")
