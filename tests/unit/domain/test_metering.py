from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from chargegrid.domain.metering import energy_register_wh, to_base_unit
from chargegrid.domain.model import MeterReading, SampledValue

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_units_and_multipliers() -> None:
    assert to_base_unit(SampledValue(Decimal("1.5"), unit="kWh")) == Decimal(1500)
    assert to_base_unit(SampledValue(Decimal("15"), unit="Wh", multiplier=2)) == Decimal(1500)
    assert to_base_unit(
        SampledValue(Decimal("7.2"), measurand="Power.Active.Import", unit="kW")
    ) == Decimal("7200.0")
    assert to_base_unit(SampledValue(Decimal("16"), measurand="Current.Import", unit="A")) == 16


def test_energy_register_takes_the_latest_whole_meter_reading() -> None:
    readings = [
        MeterReading(T0 + timedelta(minutes=1), (SampledValue(Decimal("2.0"), unit="kWh"),)),
        MeterReading(
            T0,
            (
                SampledValue(Decimal(1000), unit="Wh"),
                SampledValue(Decimal(99), unit="Wh", phase="L1"),
            ),
        ),
        MeterReading(T0, (SampledValue(Decimal(5), measurand="Power.Active.Import", unit="kW"),)),
    ]
    assert energy_register_wh(readings) == Decimal("2000.0")
    assert energy_register_wh(readings[2:]) is None
