from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from chargegrid.entrypoints import settings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    conf = settings.load(parse(), environ={})
    assert (conf.ocpp_port, conf.unknown_stations, conf.db) == (
        9000,
        "pending",
        "sqlite:///chargegrid.db",
    )


def test_precedence_flags_over_env_over_toml(tmp_path: Path) -> None:
    toml = tmp_path / "cg.toml"
    toml.write_text(
        '[chargegrid]\nocpp_port = 9100\nhost = "10.0.0.1"\nunknown_stations = "reject"\n'
    )
    env = {
        "CHARGEGRID_CONFIG": str(toml),
        "CHARGEGRID_OCPP_PORT": "9200",
        "CHARGEGRID_REQUIRE_AUTH": "yes",
    }
    conf = settings.load(parse("--unknown-stations", "accept"), environ=env)
    assert conf.ocpp_port == 9200
    assert conf.host == "10.0.0.1"
    assert conf.unknown_stations == "accept"
    assert conf.require_auth is True
    conf = settings.load(
        parse("--ocpp-port", "9300", "--path-prefix", "/a", "--path-prefix", "/b"), environ=env
    )
    assert conf.ocpp_port == 9300
    assert conf.path_prefixes == ("/a", "/b")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHARGEGRID_OCPP_PORT": "nine"}, "ocpp_port"),
        ({"CHARGEGRID_UNKNOWN_STATIONS": "maybe"}, "unknown_stations"),
        ({"CHARGEGRID_OCPP_PORT": "70000"}, "ocpp_port"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(parse(), environ=env)


def test_unknown_key_in_toml(tmp_path: Path) -> None:
    toml = tmp_path / "cg.toml"
    toml.write_text("ocpp_prot = 1\n")
    with pytest.raises(settings.SettingsError, match="ocpp_prot"):
        settings.load(parse("--config", str(toml)), environ={})
