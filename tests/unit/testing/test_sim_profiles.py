"""The simulated car's charging curve, the profiles it obeys and the scenario file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargegrid.testing.simulator.car import Car, Rng
from chargegrid.testing.simulator.profiles import Period, Profile, Profiles
from chargegrid.testing.simulator.scenario import ScenarioError, load


def test_constant_power_then_a_taper_then_nothing() -> None:
    car = Car(capacity_wh=50_000, soc=0.5, max_power_w=11_000, target_soc=0.9)
    assert car.acceptance_w() == 11_000
    car.soc = 0.85
    assert 2_000 < car.acceptance_w() < 11_000  # a quarter of the way down the taper
    car.soc = 0.9
    assert car.full and car.acceptance_w() == 0


@given(
    soc=st.floats(0, 1),
    target=st.floats(0.5, 1),
    seconds=st.floats(0, 36_000),
    limit=st.floats(0, 50_000),
)
def test_a_car_never_takes_more_than_it_may(
    soc: float, target: float, seconds: float, limit: float
) -> None:
    car = Car(capacity_wh=60_000, soc=soc, max_power_w=22_000, target_soc=target)
    before = car.soc
    energy = car.charge(seconds, limit)
    assert 0 <= energy <= min(limit, 22_000) * seconds / 3600 + 1e-6
    assert car.soc <= max(before, target) + 1e-9


def test_the_same_seed_draws_the_same_numbers() -> None:
    a, b = Rng(42), Rng(42)
    draws = [a.random() for _ in range(100)]
    assert draws == [b.random() for _ in range(100)]
    assert all(0 <= x < 1 for x in draws) and len(set(draws)) == 100


def _profile(pid: int, purpose: str, limit: float, stack: int = 0, connector: int = 1) -> Profile:
    return Profile(
        id=pid,
        connector=connector,
        purpose=purpose,  # type: ignore[arg-type]
        stack_level=stack,
        unit="A",
        periods=(Period(0, limit),),
        received_at=0.0,
    )


def test_a_tx_profile_overrides_the_default_and_the_maximum_caps_both() -> None:
    profiles = Profiles(voltage=230, phases=3)
    assert profiles.limit_w(1, 10.0) == float("inf")
    profiles.install(_profile(1, "default", 16, connector=0))
    assert profiles.limit_w(1, 10.0) == 16 * 690
    profiles.install(_profile(2, "tx", 10))
    assert profiles.limit_w(1, 10.0) == 16 * 690  # no transaction: no TxProfile
    assert profiles.limit_w(1, 10.0, tx_start=5.0) == 10 * 690
    profiles.install(_profile(3, "max", 6, connector=0))
    assert profiles.limit_w(1, 10.0, tx_start=5.0) == 6 * 690
    profiles.install(_profile(4, "max", 20, connector=0))  # same slot: replaces profile 3
    assert sorted(profiles.items) == [1, 2, 4]
    profiles.end_transaction("any")
    assert sorted(profiles.items) == [1, 4]


def test_a_schedule_moves_with_its_periods_and_ends_with_its_duration() -> None:
    profiles = Profiles(voltage=230, phases=3)
    stepped = Profile(
        id=1,
        connector=1,
        purpose="tx",
        stack_level=0,
        unit="W",
        periods=(Period(0, 7_000), Period(60, 3_000)),
        received_at=0.0,
        kind="Relative",
        duration=120,
    )
    profiles.install(stepped)
    assert [profiles.limit_w(1, t, tx_start=100.0) for t in (100, 159, 160, 219, 220)] == [
        7_000,
        7_000,
        3_000,
        3_000,
        float("inf"),
    ]
    assert profiles.composite(1, 100.0, 300, 100.0, ceiling=11_000) == [
        (0.0, 7_000),
        (60.0, 3_000),
        (120.0, 11_000),
    ]


def test_a_scenario_file_and_the_options_over_it(tmp_path: Path) -> None:
    toml = tmp_path / "fleet.toml"
    toml.write_text('[simulate]\nstations = 3\nversion = "2.0.1"\nidle = [5, 10]\nrate = 2\n')
    scenario = load(toml, {"rate": 7.0, "prefix": None})
    assert (scenario.stations, scenario.version, scenario.idle, scenario.rate) == (
        3,
        "2.0.1",
        (5.0, 10.0),
        7.0,
    )
    assert scenario.station_ids() == ["SIM-00001", "SIM-00002", "SIM-00003"]
    as_json = tmp_path / "fleet.json"
    as_json.write_text(json.dumps({"stations": 2, "tokens": ["A", "B"]}))
    assert load(as_json, {}).tokens_of(1) == ("A", "B")
    for bad, why in (
        ({"stations": 0}, "stations"),
        ({"idle": [10, 5]}, "idle"),
        ({"url": "http://x"}, "ws://"),
        ({"nope": 1}, "nope"),
    ):
        as_json.write_text(json.dumps(bad))
        with pytest.raises(ScenarioError, match=why):
            load(as_json, {})
    with pytest.raises(ScenarioError, match="cannot read"):
        load(tmp_path / "missing.toml", {})
