"""The ``chargegrid`` command.

``chargegrid serve`` runs the central system. ``chargegrid station add|accept|reject|list`` and
``chargegrid db upgrade`` work on the database directly, for operators without the REST API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from chargegrid import __version__
from chargegrid.entrypoints import logs, settings

if TYPE_CHECKING:
    from chargegrid.adapters.storage.store import SqlStore
    from chargegrid.service.ocpp.service import OcppService

log = structlog.get_logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        conf = settings.load(args)
    except settings.SettingsError as exc:
        print(f"chargegrid: {exc}", file=sys.stderr)
        return 2
    logs.configure(conf.log_level, conf.log_format)
    code: int = _run(args.func(args, conf))
    return code


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not built for Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargegrid", description="EV charging management")
    parser.add_argument("--version", action="version", version=f"chargegrid {__version__}")
    sub = parser.add_subparsers(title="commands")

    serve = sub.add_parser("serve", help="run the central system (OCPP 1.6J and 2.0.1)")
    settings.add_arguments(serve)
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(title="db commands")
    up = db_sub.add_parser("upgrade", help="migrate the database to the current schema")
    settings.add_arguments(up)
    up.set_defaults(func=_db_upgrade)

    station = sub.add_parser("station", help="manage stations in the database")
    st_sub = station.add_subparsers(title="station commands")
    add = st_sub.add_parser("add", help="register a station (accepted unless --pending)")
    add.add_argument("station_id")
    add.add_argument("--password", help="Basic-auth password (security profile 1), 16-40 chars")
    add.add_argument("--pending", action="store_true", help="register it as pending")
    settings.add_arguments(add)
    add.set_defaults(func=_station_add)
    for name, helptext in (("accept", "accept a station"), ("reject", "reject a station")):
        cmd = st_sub.add_parser(name, help=helptext)
        cmd.add_argument("station_id")
        settings.add_arguments(cmd)
        cmd.set_defaults(func=_station_accept if name == "accept" else _station_reject)
    lst = st_sub.add_parser("list", help="list stations")
    lst.add_argument("--json", action="store_true", help="JSON output for scripts")
    settings.add_arguments(lst)
    lst.set_defaults(func=_station_list)
    return parser


async def _serve(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.bootstrap import build

    app = await build(conf)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "chargegrid ready",
        ocpp=f"ws://{conf.host}:{app.server.port}/ocpp/<stationId>",
        db=conf.db.split("@")[-1],
    )
    await stop.wait()
    log.info("shutting down")
    await app.stop()
    return 0


async def _db_upgrade(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.bootstrap import prepare_database

    await prepare_database(conf.db)
    print("database is at the current schema")
    return 0


async def _with_ocpp(conf: settings.Settings) -> tuple[SqlStore, OcppService]:
    from chargegrid.adapters.storage.store import open_store
    from chargegrid.bootstrap import SystemClock, prepare_database
    from chargegrid.service.central import CentralSystem
    from chargegrid.service.ocpp.service import OcppService

    store = await open_store(await prepare_database(conf.db))
    return store, OcppService(CentralSystem(store, SystemClock()))


async def _station_add(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.domain.model import Registration
    from chargegrid.domain.passwords import PasswordRuleError, check_rules

    try:
        if args.password:
            check_rules(args.password)
    except PasswordRuleError as exc:
        print(f"chargegrid: {exc}", file=sys.stderr)
        return 2
    store, ocpp = await _with_ocpp(conf)
    try:
        registration = Registration.PENDING if args.pending else Registration.ACCEPTED
        await ocpp.central.set_registration(args.station_id, registration)
        if args.password:
            await ocpp.set_password(args.station_id, args.password)
    finally:
        await store.close()
    print(f"station {args.station_id} registered ({registration.value})")
    return 0


async def _set_registration(station_id: str, conf: settings.Settings, accept: bool) -> int:
    from chargegrid.domain.model import Registration

    store, ocpp = await _with_ocpp(conf)
    try:
        reg = Registration.ACCEPTED if accept else Registration.REJECTED
        await ocpp.central.set_registration(station_id, reg)
    finally:
        await store.close()
    print(f"station {station_id} {reg.value.lower()}")
    return 0


async def _station_accept(args: argparse.Namespace, conf: settings.Settings) -> int:
    return await _set_registration(args.station_id, conf, accept=True)


async def _station_reject(args: argparse.Namespace, conf: settings.Settings) -> int:
    return await _set_registration(args.station_id, conf, accept=False)


async def _station_list(args: argparse.Namespace, conf: settings.Settings) -> int:
    store, _ = await _with_ocpp(conf)
    try:
        stations = await store.list_stations()
    finally:
        await store.close()
    rows = [
        {
            "id": s.id,
            "registration": s.registration.value,
            "ocpp": s.ocpp_version,
            "vendor": s.vendor,
            "model": s.model,
            "online": s.online,
            "last_seen": s.last_seen.isoformat() if s.last_seen else None,
        }
        for s in stations
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ["id", "registration", "ocpp", "vendor", "model", "online", "last_seen"]
    table = [header] + [[str(r[h] if r[h] is not None else "-") for h in header] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
