"""Cluster mode's settings: the URL may come from the environment, the secret must (or from the
settings file: never a flag), and neither shows in the settings' repr."""

from __future__ import annotations

import argparse

import pytest

from chargegrid.entrypoints import settings

DB = "postgresql://cg@db/chargegrid"
SECRET = "0123456789abcdef0123456789abcdef"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_url_and_secret_from_the_environment() -> None:
    env = {
        "CHARGEGRID_CLUSTER": "nats://u:hunter2hunter2@nats:4222",
        "CHARGEGRID_CLUSTER_SECRET": SECRET,
        "CHARGEGRID_DB": DB,
    }
    conf = settings.load(parse("--cluster-dead-after", "15"), environ=env)
    assert conf.cluster.startswith("nats://") and conf.cluster_secret == SECRET
    assert conf.cluster_dead_after == 15.0
    assert "hunter2" not in repr(conf) and SECRET not in repr(conf)


def test_cluster_mode_needs_a_long_secret() -> None:
    for env in ({}, {"CHARGEGRID_CLUSTER_SECRET": "short"}):
        with pytest.raises(settings.SettingsError, match="cluster_secret"):
            settings.load(parse("--cluster", "nats://nats:4222", "--db", DB), environ=env)


def test_the_secret_is_never_a_flag() -> None:
    with pytest.raises(SystemExit):
        parse("--cluster-secret", SECRET)


def test_dead_after_defaults_to_10_s_and_has_a_floor() -> None:
    assert settings.load(parse(), environ={}).cluster_dead_after == 10.0
    with pytest.raises(settings.SettingsError, match="cluster_dead_after"):
        settings.load(parse("--cluster-dead-after", "1"), environ={})
