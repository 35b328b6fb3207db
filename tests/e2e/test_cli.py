"""The ``chargegrid`` command on a real SQLite file; ``send`` and the read commands also against a
running node, with a station built on the `ocpp` package connected to it."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from stations import Driver, Station16, connect

from chargegrid.adapters.storage.store import open_store
from chargegrid.bootstrap import App, build
from chargegrid.domain.passwords import GENERATED_ITERATIONS, verify_password
from chargegrid.entrypoints.api.transactions import CSV_FIELDS
from chargegrid.entrypoints.cli import main
from chargegrid.entrypoints.settings import Settings

ADMIN = "an-admin-token-for-the-cli-tests"


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


def test_station_add_with_a_generated_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(db, "db", "upgrade") == 0
    capsys.readouterr()
    assert run(db, "station", "add", "CP-G", "--generate-password") == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("password (shown once): ")]
    password = line.rsplit(" ", 1)[1]
    store = asyncio.run(_stored_hash(db, "CP-G"))
    assert verify_password(password, store) and password not in store
    assert store.split("$")[1] == str(GENERATED_ITERATIONS)
    assert run(db, "station", "add", "CP-H", "--generate-password", "--password", "x" * 20) == 2


async def _stored_hash(db: str, station_id: str) -> str:
    store = await open_store(db)
    try:
        station = await store.get_station(station_id)
    finally:
        await store.close()
    assert station is not None and station.password_hash is not None
    return station.password_hash


def test_site_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    document = {
        "name": "Depot",
        "policy": "priority",
        "circuits": [{"id": "grid", "limit_a": 63}, {"id": "garage", "parent": "grid"}],
        "evses": [{"station_id": "CP-1", "evse_id": 1, "circuit": "garage"}],
    }
    (tmp_path / "site.json").write_text(json.dumps(document))
    assert run(db, "site", "put", "depot", str(tmp_path / "site.json")) == 0
    assert "2 circuits, 1 EVSEs" in capsys.readouterr().out
    assert run(db, "site", "evse", "depot", "CP-2", "1", "--circuit", "grid", "--wiring", "L2") == 0
    capsys.readouterr()
    assert run(db, "site", "show", "depot", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["policy"], [e["wiring"] for e in shown["evses"]]) == (
        "priority",
        ["L1L2L3", "L2"],
    )
    assert run(db, "site", "show", "depot") == 0
    assert "CP-2/1" in capsys.readouterr().out
    # what show --json prints is a document put takes back, for this site and no other
    (tmp_path / "shown.json").write_text(json.dumps(shown))
    assert run(db, "site", "put", "depot", str(tmp_path / "shown.json")) == 0
    assert run(db, "site", "put", "elsewhere", str(tmp_path / "shown.json")) == 2
    assert "another site" in capsys.readouterr().err
    # a station that takes no profiles may draw its maximum unless told otherwise
    assert run(db, "site", "evse", "depot", "CP-4", "1", "--circuit", "grid", "--no-smart") == 0
    capsys.readouterr()
    assert run(db, "site", "show", "depot", "--json") == 0
    [dumb] = [e for e in json.loads(capsys.readouterr().out)["evses"] if e["station_id"] == "CP-4"]
    assert (dumb["smart"], dumb["fallback_a"]) == (False, 32.0)
    assert run(db, "site", "evse", "depot", "CP-5", "0", "--circuit", "grid") == 1
    assert "EVSE ids start at 1" in capsys.readouterr().err
    # the rules, and the site left as it was
    assert run(db, "site", "evse", "depot", "CP-3", "1", "--circuit", "attic") == 1
    assert "no circuit attic" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"circuits": []}')
    assert run(db, "site", "put", "other", str(tmp_path / "bad.json")) == 2
    assert "circuits" in capsys.readouterr().err
    assert run(db, "site", "list") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:3] == ["depot", "Depot", "priority"]
    assert run(db, "site", "delete", "depot") == 0
    assert run(db, "site", "delete", "depot") == 1


def test_a_database_that_cannot_be_opened_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'missing' / 'cli.db'}"
    for argv in (("db", "upgrade"), ("station", "list")):
        assert run(db, *argv) == 1
        err = capsys.readouterr().err
        assert "cannot open the database" in err
        assert "Traceback" not in err


def test_station_show_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert (
        run(
            db,
            "station",
            "add",
            "CP-1",
            "--password",
            "a-16-to-40-char-secret",
            "--security-profile",
            "2",
        )
        == 0
    )
    capsys.readouterr()
    assert run(db, "station", "show", "CP-1") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["station", "CP-1"]
    assert ["password", "set", "True"] in [line.split() for line in out.splitlines()]
    assert ["security", "profile", "2"] in [line.split() for line in out.splitlines()]
    assert "no connector status reported" in out
    assert "no active transaction" in out
    assert run(db, "station", "show", "CP-9", "--json") == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "chargegrid: no station 'CP-9'\n")


def test_token_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert (
        run(
            db,
            "token",
            "add",
            "CARD-1",
            "--kind",
            "KeyCode",
            "--group",
            "FLEET-A",
            "--expires",
            "2030-01-31T12:00:00+01:00",
            "--owner",
            "Ada",
        )
        == 0
    )
    assert run(db, "token", "add", "CARD-2", "--blocked") == 0
    assert capsys.readouterr().out == "id token CARD-1 created\nid token CARD-2 created\n"
    assert run(db, "token", "add", "CARD-1") == 1
    assert "chargegrid: id token 'CARD-1' exists" in capsys.readouterr().err
    assert run(db, "token", "add", "CARD-3", "--expires", "2030-01-31") == 2
    assert "RFC 3339" in capsys.readouterr().err
    assert run(db, "token", "add", "X" * 256) == 2
    assert "length" in capsys.readouterr().err

    assert run(db, "token", "list", "--json") == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "value": "CARD-1",
            "kind": "KeyCode",
            "group": "FLEET-A",
            "expires_at": "2030-01-31T11:00:00Z",
            "blocked": False,
            "allow_concurrent": False,
            "owner": "Ada",
        },
        {
            "value": "CARD-2",
            "kind": "ISO14443",
            "group": None,
            "expires_at": None,
            "blocked": True,
            "allow_concurrent": False,
            "owner": None,
        },
    ]

    # One bad row refuses the whole file, as the API's import does; every error is named.
    bad = tmp_path / "bad.csv"
    bad.write_text("value,kind,blocked\nCARD-9,ISO14443,no\nCARD-8,Barcode,maybe\n")
    assert run(db, "token", "import", str(bad)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    [first, *details] = captured.err.splitlines()
    assert first == f"chargegrid: {bad} has errors; nothing was imported"
    assert "  row 3: blocked must be true or false" in details
    assert all(line.startswith("  row 3: ") for line in details)  # row 2 is fine
    assert run(db, "token", "import", str(tmp_path / "missing.csv")) == 1
    assert "cannot read" in capsys.readouterr().err

    good = tmp_path / "good.csv"
    good.write_bytes(
        "\ufeffvalue,kind,group,expires_at,blocked,owner\n"
        "CARD-9,ISO14443,FLEET-B,2031-06-01T00:00:00Z,no,Bob\n"
        "CARD-2,KeyCode,,,false,Cy\n".encode()
    )
    assert run(db, "token", "import", str(good)) == 0
    assert capsys.readouterr().out == (f"imported 2 id tokens from {good}: 1 created, 1 updated\n")
    assert run(db, "token", "list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "value",
        "kind",
        "group",
        "expires_at",
        "blocked",
        "allow_concurrent",
        "owner",
    ]
    assert [line.split() for line in table[1:]] == [
        ["CARD-1", "KeyCode", "FLEET-A", "2030-01-31T11:00:00Z", "False", "False", "Ada"],
        ["CARD-2", "KeyCode", "-", "-", "False", "False", "Cy"],
        ["CARD-9", "ISO14443", "FLEET-B", "2031-06-01T00:00:00Z", "False", "False", "Bob"],
    ]
    # Columns a file does not name are kept, as by the API's import.
    only_blocked = tmp_path / "block.csv"
    only_blocked.write_text("value,blocked\nCARD-1,yes\n")
    assert run(db, "token", "import", str(only_blocked)) == 0
    capsys.readouterr()
    assert run(db, "token", "list", "--json") == 0
    [card1, *_] = json.loads(capsys.readouterr().out)
    assert card1 == {
        "value": "CARD-1",
        "kind": "KeyCode",
        "group": "FLEET-A",
        "expires_at": "2030-01-31T11:00:00Z",
        "blocked": True,
        "allow_concurrent": False,
        "owner": "Ada",
    }


def test_api_token_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(db, "api-token", "create", "night shift", "--role", "operator") == 0
    captured = capsys.readouterr()
    secret = captured.out.strip()
    assert len(secret) >= 40 and "\n" not in secret  # the secret alone, for $(...)
    assert "will not be shown again" in captured.err
    assert run(db, "api-token", "create", "ci", "--role", "viewer", "--json") == 0
    created = json.loads(capsys.readouterr().out)
    assert created["api_token"]["name"] == "ci" and created["api_token"]["role"] == "viewer"
    with pytest.raises(SystemExit) as exited:
        run(db, "api-token", "create", "x", "--role", "root")
    assert exited.value.code == 2
    assert "invalid choice: 'root'" in capsys.readouterr().err

    assert run(db, "api-token", "revoke", str(created["api_token"]["id"])) == 0
    assert run(db, "api-token", "revoke", "999") == 1
    assert "no API token 999" in capsys.readouterr().err
    assert run(db, "api-token", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["role"], t["revoked"]) for t in listed] == [
        ("night shift", "operator", False),
        ("ci", "viewer", True),
    ]
    assert secret not in json.dumps(listed) and created["token"] not in json.dumps(listed)
    assert run(db, "api-token", "list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["id", "name", "role", "created_at", "revoked"]
    assert "night shift" in table[1] and table[2].split()[-1] == "True"


def test_unusable_database_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}", "token", "list") == 1
    err = capsys.readouterr().err
    assert err == (
        f"chargegrid: cannot open the database sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}: "
        f"no directory {tmp_path / 'no' / 'such'}\n"
    )


def test_bad_setting_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read settings file" in capsys.readouterr().err
    assert main(["serve", "--tls-cert", str(tmp_path / "cert.pem")]) == 2
    assert "tls_cert and tls_key go together" in capsys.readouterr().err


def test_unusable_tls_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    db = f"sqlite:///{tmp_path / 'tls.db'}"
    code = main(
        [
            "serve",
            "--db",
            db,
            "--tls-cert",
            str(tmp_path / "cert.pem"),
            "--tls-key",
            str(tmp_path / "cert.pem"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"chargegrid: cannot load the server certificate {tmp_path}/cert.pem")
    assert "Traceback" not in err


def test_send_help_lists_its_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["send", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "CHARGEGRID_API_TOKEN" in out
    for line in ("6  the station is not connected (409)", "9  the station did not answer"):
        assert line in out


# --- against a running node -------------------------------------------------------------------


class Refusing16(Station16):  # type: ignore[misc]
    """Answers Reset with a CALLERROR and DataTransfer only after 0.8 s."""

    @on("Reset")
    def on_Reset(self, **kwargs: Any) -> Any:  # the ocpp package routes by name
        raise NotSupportedError("Reset is disabled on this unit", {"reason": "maintenance"})

    @on("DataTransfer")
    async def on_DataTransfer(self, **kwargs: Any) -> Any:
        await asyncio.sleep(0.8)
        return result16.DataTransfer(status="Accepted", data="late")


@asynccontextmanager
async def connect_refusing(port: int, station_id: str) -> AsyncIterator[Any]:
    async with connect(port, station_id, "1.6", station_class=Refusing16) as cp:
        yield cp


Cli = Callable[..., Any]


@pytest.fixture
async def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    app = await build(
        Settings(
            host="127.0.0.1",
            ocpp_port=0,
            api_port=0,
            db=f"sqlite:///{tmp_path / 'node.db'}",
            unknown_stations="accept",
            ping_interval=0,
            call_timeout=5,
            admin_token=ADMIN,
        )
    )
    await app.start()
    monkeypatch.setenv("CHARGEGRID_LOG_LEVEL", "warning")
    monkeypatch.setenv("CHARGEGRID_API_URL", f"http://127.0.0.1:{app.api.port}")
    monkeypatch.delenv("CHARGEGRID_API_TOKEN", raising=False)
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
def cli(node: App, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``await cli(*argv)`` -> (exit code, stdout, stderr): ``main`` in a thread of its own (it
    runs its own event loop; this one keeps serving), on the node's database."""

    async def call(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        db = [] if argv[0] == "send" else ["--db", node.settings.db]
        code = await asyncio.to_thread(main, [*argv, *db])
        out, err = capsys.readouterr()
        return code, out, err

    return call


async def operator_token(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    code, secret, _ = await cli("api-token", "create", "ops", "--role", "operator")
    assert code == 0
    monkeypatch.setenv("CHARGEGRID_API_TOKEN", secret.strip())


async def test_send_prints_the_station_answer(
    node: App, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    await operator_token(cli, monkeypatch)
    async with connect(node.server.port, "CP-1", "1.6") as cp:
        await Driver(cp, "1.6").boot()
        code, out, err = await cli(
            "send", "CP-1", "GetConfiguration", '{"key": ["HeartbeatInterval"]}'
        )
        assert (code, err) == (0, "")
        assert json.loads(out) == {
            "configurationKey": [
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
            ]
        }
        assert cp.received == [("GetConfiguration", {"key": ["HeartbeatInterval"]})]
        code, out, err = await cli("send", "CP-1", "ClearCache")  # no payload: {}
        assert (code, json.loads(out)) == (0, {"status": "Accepted"})

        code, out, err = await cli("send", "CP-1", "Reset", '{"type": "Sometime"}')
        assert (code, out) == (7, "")
        assert err.startswith("chargegrid: ") and "type" in err
        code, out, err = await cli("send", "CP-1", "Reset", "{not json")
        assert (code, out) == (2, "")
        assert "not JSON" in err
        assert [action for action, _ in cp.received] == ["GetConfiguration", "ClearCache"]


async def test_send_station_errors_have_their_own_exit_codes(
    node: App, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    await operator_token(cli, monkeypatch)
    assert (await cli("station", "add", "CP-OFF"))[0] == 0
    code, out, err = await cli("send", "CP-OFF", "Reset", '{"type": "Soft"}')
    assert (code, out) == (6, "")
    assert err.startswith("chargegrid: station ") and "CP-OFF" in err and "not connected" in err
    code, out, err = await cli("send", "CP-NONE", "Reset", '{"type": "Soft"}')
    assert (code, out, err) == (5, "", "chargegrid: no station 'CP-NONE'\n")

    async with connect_refusing(node.server.port, "CP-ERR") as cp:
        await Driver(cp, "1.6").boot()
        code, out, err = await cli("send", "CP-ERR", "Reset", '{"type": "Soft"}')
        assert (code, out) == (8, "")
        assert (  # the station's own log of the error may come first
            "chargegrid: the station answered with a CALLERROR: "
            "NotSupported: Reset is disabled on this unit\n"
            '  details: {"reason": "maintenance"}\n'
        ) in err
        code, out, err = await cli(
            "send", "CP-ERR", "DataTransfer", '{"vendorId": "com.acme"}', "--timeout", "0.2"
        )
        assert (code, out) == (9, "")
        assert err.endswith("chargegrid: no answer to DataTransfer within 0.2 s\n")


async def test_send_without_a_usable_token_or_server(
    node: App, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = await cli("send", "CP-1", "Reset", '{"type": "Soft"}')
    assert code == 2 and "CHARGEGRID_API_TOKEN" in err
    code, viewer, _ = await cli("api-token", "create", "eyes", "--role", "viewer")
    monkeypatch.setenv("CHARGEGRID_API_TOKEN", viewer.strip())
    code, _, err = await cli("send", "CP-1", "Reset", '{"type": "Soft"}')
    assert code == 4 and "operator role" in err
    code, gone, _ = await cli("api-token", "create", "gone", "--role", "admin")
    assert (await cli("api-token", "revoke", "2"))[0] == 0
    monkeypatch.setenv("CHARGEGRID_API_TOKEN", gone.strip())
    code, _, err = await cli("send", "CP-1", "Reset", '{"type": "Soft"}')
    assert (code, err) == (4, "chargegrid: unknown or revoked token\n")

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    code, out, err = await cli(
        "send", "CP-1", "Reset", '{"type": "Soft"}', "--api-url", f"http://127.0.0.1:{closed}"
    )
    assert (code, out) == (3, "")
    assert err.startswith(f"chargegrid: cannot reach the API at http://127.0.0.1:{closed}")
    assert len(err.splitlines()) == 1


async def test_station_and_transactions_of_a_live_node(node: App, cli: Cli, tmp_path: Path) -> None:
    assert (await cli("token", "add", "DRIVER-1", "--group", "FLEET-A"))[0] == 0
    async with connect(node.server.port, "CP-1", "1.6") as cp:
        station = Driver(cp, "1.6")
        await station.boot()
        await station.status(1, "Available")
        await station.status(2, "Charging")
        first, status = await station.start("DRIVER-1", 1000, connector=1)
        assert status == "Accepted"
        await station.meter(first, 1500, connector=1)
        await station.stop(first, 2500, tag="DRIVER-1", connector=1)
        second, _ = await station.start("DRIVER-1", 5000, connector=2)

        code, out, _ = await cli("station", "show", "CP-1", "--json")
        assert code == 0
        shown = json.loads(out)
        assert shown["station"]["id"] == "CP-1" and shown["station"]["connected"] is True
        assert shown["station"]["vendor"] == "ACME"
        assert [(c["connector_id"], c["status"]) for c in shown["connectors"]] == [
            (1, "Available"),
            (2, "Charging"),
        ]
        [active] = shown["active_transactions"]
        assert (active["station_tx_id"], active["state"]) == (second, "Active")
        code, out, _ = await cli("station", "show", "CP-1")
        assert code == 0 and "active transactions:" in out
        assert any(line.split()[:3] == ["1", "1", "Available"] for line in out.splitlines())

    code, out, _ = await cli("tx", "list", "--json")
    listed = json.loads(out)
    assert [(t["station_tx_id"], t["state"]) for t in listed] == [
        (second, "Active"),
        (first, "Ended"),
    ]  # newest first
    assert listed[1]["energy_wh"] == "1500"
    code, out, err = await cli("tx", "list", "--state", "Ended")
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["id", "station_id", "evse_id"] and len(rows) == 2
    assert "Ended" in rows[1].split() and err == ""
    code, out, err = await cli("tx", "list", "--limit", "1", "--station", "CP-1")
    assert len(out.splitlines()) == 2 and "more with --limit" in err
    code, out, _ = await cli("tx", "list", "--token", "NOBODY", "--json")
    assert (code, json.loads(out)) == (0, [])

    ended = listed[1]["id"]
    code, out, _ = await cli("tx", "show", str(ended), "--json")
    detail = json.loads(out)
    assert detail["transaction"] == listed[1]
    measurands = [v["measurand"] for r in detail["meter_values"] for v in r["values"]]
    assert "Energy.Active.Import.Register" in measurands and "Current.Import" in measurands
    code, out, _ = await cli("tx", "show", str(ended))
    assert code == 0 and out.splitlines()[0].split() == ["id", str(ended)]
    assert any("Current.Import" in line and "L1" in line for line in out.splitlines())
    code, out, err = await cli("tx", "show", "999")
    assert (code, out, err) == (1, "", "chargegrid: no transaction 999\n")

    # The export is the API's, byte for byte.
    async with httpx.AsyncClient() as http:
        api = await http.get(
            f"http://127.0.0.1:{node.api.port}/api/v1/transactions/export.csv",
            params={"state": "Ended"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    assert api.status_code == 200
    code, out, _ = await cli("tx", "export", "--state", "Ended")
    assert code == 0 and out == api.text
    [header, row] = list(csv.reader(io.StringIO(out)))
    assert header == CSV_FIELDS and row[CSV_FIELDS.index("energy_wh")] == "1500"
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "transactions.csv"
    code, out, err = await cli("tx", "export", "-o", str(target))
    assert (code, out) == (0, "")
    assert err == f"exported 2 transactions to {target}\n"
    assert len(list(csv.DictReader(io.StringIO(target.read_text())))) == 2
    assert [p.name for p in target.parent.iterdir()] == ["transactions.csv"]  # no partial left


@pytest.mark.parametrize("flag", ["--ocpp-port", "--api-port"])
def test_serve_says_so_when_a_port_is_taken(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        other = "--api-port" if flag == "--ocpp-port" else "--ocpp-port"
        code = run(
            f"sqlite:///{tmp_path / 'serve.db'}",
            "serve",
            "--host",
            "127.0.0.1",
            flag,
            port,
            other,
            "0",
        )
    assert code == 1
    assert "cannot start" in capsys.readouterr().err
    gc.collect()  # a connection the failed start left open would warn here, failing the test
