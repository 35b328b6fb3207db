"""The ``chargegrid`` command's station and database sub-commands, on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chargegrid.entrypoints.cli import main


def run(db: str, *argv: str) -> int:
    return main([*argv, "--db", db, "--log-level", "warning"])


def test_station_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(db, "db", "upgrade") == 0
    assert run(db, "station", "add", "CP-1", "--password", "a-16-to-40-char-secret") == 0
    assert run(db, "station", "add", "CP-2", "--pending") == 0
    assert run(db, "station", "add", "CP-3", "--password", "short") == 2
    assert "16 to 40" in capsys.readouterr().err
    assert run(db, "station", "accept", "CP-2") == 0
    capsys.readouterr()
    assert run(db, "station", "list", "--json") == 0
    listed = {s["id"]: s["registration"] for s in json.loads(capsys.readouterr().out)}
    assert listed == {"CP-1": "Accepted", "CP-2": "Accepted"}  # CP-3 was refused whole
    assert run(db, "station", "reject", "CP-1") == 0
    capsys.readouterr()
    assert run(db, "station", "list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["id", "registration"]
    assert any(line.startswith("CP-1") and "Rejected" in line for line in table)


def test_bad_setting_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read settings file" in capsys.readouterr().err
