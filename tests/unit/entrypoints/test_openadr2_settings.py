"""The OpenADR 2.0b VEN's settings: from the environment and flags, and what is refused."""

from __future__ import annotations

import argparse

import pytest

from chargegrid.entrypoints import settings


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return parser.parse_args(argv)


def test_off_by_default_and_set_by_env_and_flags() -> None:
    conf = settings.load(_parse(), environ={})
    assert conf.openadr2_vtn_url == "" and conf.openadr2_opt == "in"
    assert settings.openadr2_levels(conf) == (1.0, 0.75, 0.5, 0.0)
    env = {
        "CHARGEGRID_OPENADR2_VTN_URL": "https://vtn.example/OpenADR2/Simple/2.0b",
        "CHARGEGRID_OPENADR2_SITE": "depot/garage",
        "CHARGEGRID_OPENADR2_SIMPLE_LEVELS": "1,0.8,0.6,0.2",
    }
    conf = settings.load(_parse("--openadr2-opt", "out", "--openadr2-ven-name", "cg-1"), env)
    assert conf.openadr2_site == "depot/garage" and conf.openadr2_opt == "out"
    assert conf.openadr2_ven_name == "cg-1"
    assert settings.openadr2_levels(conf) == (1.0, 0.8, 0.6, 0.2)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHARGEGRID_OPENADR2_VTN_URL": "vtn.example"}, "http:// or https://"),
        ({"CHARGEGRID_OPENADR2_VTN_URL": "http://vtn.example"}, "openadr2_site"),
        ({"CHARGEGRID_OPENADR2_OPT": "maybe"}, "in or out"),
        ({"CHARGEGRID_OPENADR2_CERT": "ven.pem"}, "go together"),
        (
            {"CHARGEGRID_OPENADR2_CERT": "ven.pem", "CHARGEGRID_OPENADR2_KEY": "ven.key"},
            "openadr2_ca",
        ),
        ({"CHARGEGRID_OPENADR2_REPORT_INTERVAL": "0.5"}, "at least 1 s"),
        ({"CHARGEGRID_OPENADR2_SIMPLE_LEVELS": "1,0.5"}, "four shares"),
        ({"CHARGEGRID_OPENADR2_SIMPLE_LEVELS": "1,0.5,x,0"}, "four shares"),
        ({"CHARGEGRID_OPENADR2_SIMPLE_LEVELS": "1,0.5,2,0"}, "four shares"),
    ],
)
def test_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(_parse(), environ=env)
