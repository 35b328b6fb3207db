"""The OpenADR 3 VEN's settings: flags and environment, the secret only from the environment
(or the file) and never in a repr, and what is refused."""

from __future__ import annotations

import argparse

import pytest

from chargegrid.entrypoints import settings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_and_the_secret_from_the_environment() -> None:
    args = parse(
        "--openadr3-vtn-url",
        "https://vtn.example/openadr3/3.0.1",
        "--openadr3-client-id",
        "ven-1",
        "--openadr3-site",
        "depot/garage",
        "--openadr3-programs",
        "EV-CAP, TOU",
        "--openadr3-poll-interval",
        "10",
    )
    env = {"CHARGEGRID_OPENADR3_CLIENT_SECRET": "client-secret-123"}
    conf = settings.load(args, environ=env)
    assert conf.openadr3_programs == ("EV-CAP", "TOU")
    assert (conf.openadr3_site, conf.openadr3_poll_interval) == ("depot/garage", 10.0)
    assert conf.openadr3_client_secret == "client-secret-123"
    assert "client-secret-123" not in repr(conf)
    with pytest.raises(SystemExit):
        parse("--openadr3-client-secret", "x")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHARGEGRID_OPENADR3_VTN_URL": "ftp://vtn"}, "openadr3_vtn_url"),
        ({"CHARGEGRID_OPENADR3_VTN_URL": "https://vtn"}, "openadr3_site"),
        (
            {
                "CHARGEGRID_OPENADR3_VTN_URL": "https://vtn",
                "CHARGEGRID_OPENADR3_SITE": "depot",
                "CHARGEGRID_OPENADR3_CLIENT_ID": "ven-1",
            },
            "openadr3_client_secret",
        ),
        ({"CHARGEGRID_OPENADR3_REPORT_INTERVAL": "0.5"}, "openadr3_report_interval"),
        ({"CHARGEGRID_OPENADR3_POLL_INTERVAL": "0"}, "openadr3_poll_interval"),
    ],
)
def test_what_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(parse(), environ=env)


def test_without_a_vtn_url_nothing_is_asked() -> None:
    conf = settings.load(parse(), environ={})
    assert conf.openadr3_vtn_url == "" and conf.openadr3_site == ""
