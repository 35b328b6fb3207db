"""Reading meters: units, multipliers and the energy register.

OCPP 1.6 SampledValue carries ``unit`` (Wh, kWh, W, kW, ...) and 2.0.1 adds
``unitOfMeasure.multiplier`` (a power of ten). The transaction's energy comes from the
``Energy.Active.Import.Register`` measurand of the whole meter (no phase), in Wh.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from chargegrid.domain.model import MeterReading, SampledValue

ENERGY_REGISTER = "Energy.Active.Import.Register"
_SCALE = {"wh": Decimal(1), "kwh": Decimal(1000), "varh": Decimal(1), "kvarh": Decimal(1000)}


def to_base_unit(value: SampledValue) -> Decimal:
    """The value in its base unit (Wh, W, A, V, ...), kilo-units and multipliers applied."""
    scaled = value.value.scaleb(value.multiplier) if value.multiplier else value.value
    unit = (value.unit or "").casefold()
    if unit in _SCALE:
        return scaled * _SCALE[unit]
    if unit in ("kw", "kvar", "kva"):
        return scaled * 1000
    return scaled


def energy_register_wh(readings: Sequence[MeterReading]) -> Decimal | None:
    """The latest whole-meter energy import register reading in Wh, or None if there is none."""
    latest: Decimal | None = None
    when = None
    for reading in readings:
        for value in reading.values:
            is_register = value.measurand == ENERGY_REGISTER and value.phase is None
            if is_register and (when is None or reading.timestamp >= when):
                latest, when = to_base_unit(value), reading.timestamp
    return latest


POWER = "Power.Active.Import"


def power_w(readings: Sequence[MeterReading]) -> Decimal | None:
    """The active import power of the latest reading that has one, in W.

    The whole-meter value when there is one, else the sum of the phases (OCPP 1.6 7.31 / 2.0.1
    2.28: a meter may report per phase only). None when no reading carries the measurand.
    """
    latest: Decimal | None = None
    when = None
    for reading in readings:
        values = [v for v in reading.values if v.measurand == POWER]
        if not values or (when is not None and reading.timestamp < when):
            continue
        whole = [v for v in values if v.phase is None]
        chosen = whole[-1:] if whole else [v for v in values if v.phase in _PHASES]
        if chosen:
            latest, when = sum((to_base_unit(v) for v in chosen), Decimal(0)), reading.timestamp
    return latest


_PHASES = frozenset({"L1", "L2", "L3", "L1-N", "L2-N", "L3-N"})
