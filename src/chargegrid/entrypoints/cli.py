"""The ``chargegrid`` command.

``chargegrid serve`` runs the central system. ``chargegrid station add|accept|reject|list|show``,
``token``, ``tx``, ``api-token`` (:mod:`.cli_data`) and ``db upgrade`` work on the database
directly, for operators without a browser; ``chargegrid send`` (:mod:`.cli_send`) goes through
the running server's REST API, which holds the stations' connections. Tables by default, ``--json``
for scripts; errors on stderr with a non-zero exit (:mod:`.cli_common`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import structlog

from chargegrid import __version__
from chargegrid.adapters.pki.http import TrustFileError
from chargegrid.adapters.transport.tls import TlsConfigError
from chargegrid.entrypoints import cli_data, cli_send, cli_simulate, cli_sites, logs, pki, settings
from chargegrid.entrypoints.cli_common import USAGE, CliError, open_db, print_table, where
from chargegrid.service.ports import StorageError

if TYPE_CHECKING:
    from chargegrid.service.ocpp.service import OcppService

log = structlog.get_logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        getattr(args, "help_parser", parser).print_help()  # `chargegrid token`: the token commands
        return USAGE
    try:
        conf = settings.load(args)
    except settings.SettingsError as exc:
        print(f"chargegrid: {exc}", file=sys.stderr)
        return USAGE
    logs.configure(conf.log_level, conf.log_format)
    try:
        code: int = _run(args.func(args, conf))
    except CliError as exc:
        _fail(str(exc), exc.details)
        return exc.code
    except StorageError as exc:
        _fail(f"database {where(conf.db)}: {exc}")
        return 1
    except (TlsConfigError, TrustFileError) as exc:
        _fail(str(exc))
        return USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (chargegrid tx export | head)
        with contextlib.suppress(OSError, ValueError):  # no error again when Python flushes
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


def _fail(message: str, details: Sequence[str] = ()) -> None:
    print(f"chargegrid: {message}", file=sys.stderr)
    for line in details:
        print(f"  {line}", file=sys.stderr)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not built for Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chargegrid",
        description="EV charging management",
        epilog="Exit status: 0 done, 1 failed (unknown record, bad file, database or server "
        "unreachable), 2 bad arguments or settings; chargegrid send -h lists its own.",
    )
    parser.add_argument("--version", action="version", version=f"chargegrid {__version__}")
    sub = parser.add_subparsers(title="commands")

    serve = sub.add_parser("serve", help="run the central system (OCPP 1.6J and 2.0.1)")
    settings.add_arguments(serve)
    serve.set_defaults(func=_serve)

    db = sub.add_parser("db", help="database maintenance")
    db.set_defaults(help_parser=db)
    db_sub = db.add_subparsers(title="db commands")
    up = db_sub.add_parser("upgrade", help="migrate the database to the current schema")
    settings.add_arguments(up)
    up.set_defaults(func=_db_upgrade)

    station = sub.add_parser("station", help="manage stations in the database")
    station.set_defaults(help_parser=station)
    st_sub = station.add_subparsers(title="station commands")
    add = st_sub.add_parser("add", help="register a station (accepted unless --pending)")
    add.add_argument("station_id")
    add.add_argument("--password", help="Basic-auth password (security profile 1), 16-40 chars")
    add.add_argument(
        "--generate-password",
        action="store_true",
        help="give it a generated Basic-auth password, printed once (fast to check: 192 bits)",
    )
    add.add_argument("--pending", action="store_true", help="register it as pending")
    add.add_argument(
        "--security-profile",
        type=int,
        choices=range(4),
        default=0,
        help="0 none, 1 Basic auth, 2 TLS + Basic auth, 3 TLS client certificate (default 0)",
    )
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
    cli_data.add_commands(sub, st_sub)
    cli_send.add_command(sub)
    cli_simulate.add_command(sub)
    cli_sites.add_commands(sub)
    pki.add_commands(sub)
    return parser


async def _serve(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.bootstrap import build

    app = await build(conf)
    try:
        await app.start()
    except OSError as exc:  # a port is taken, say (start closed what it had opened)
        print(f"chargegrid: cannot start: {exc}", file=sys.stderr)
        return 1
    _tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "chargegrid ready",
        ocpp=f"ws://{conf.host}:{app.server.port}/ocpp/<stationId>",
        ocpp_tls=(
            f"wss://{conf.host}:{app.server.tls_port}/ocpp/<stationId>" if conf.tls_cert else "off"
        ),
        api=f"http://{conf.host}:{app.api.port}/api/v1 (docs at /api/v1/docs)",
        db=conf.db.split("@")[-1],
    )
    await stop.wait()
    log.info("shutting down")
    await app.stop()
    return 0


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the message path.

    Every message allocates a few hundred tracked objects, nearly all freed by reference
    counting, yet each 700 allocations start a collection that walks the young objects, and the
    older generations hold every connection and cached row. Measured with
    benchmarks/ocpp_throughput.py: 14 % of the event loop's time went to collections and the p99
    latency halved without them. What exists at start-up is frozen (never scanned again) and
    collections run after 50,000 allocations instead of 700.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def _db_upgrade(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.bootstrap import prepare_database

    await prepare_database(conf.db)
    print("database is at the current schema")
    return 0


@asynccontextmanager
async def _with_ocpp(conf: settings.Settings) -> AsyncIterator[OcppService]:
    from chargegrid.bootstrap import SystemClock
    from chargegrid.service.central import CentralSystem
    from chargegrid.service.ocpp.service import OcppService

    async with open_db(conf) as store:
        yield OcppService(CentralSystem(store, SystemClock()))


async def _station_add(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.domain.model import Registration
    from chargegrid.domain.passwords import PasswordRuleError, check_rules, generate_password

    if args.password and args.generate_password:
        print("chargegrid: --password or --generate-password, not both", file=sys.stderr)
        return USAGE
    try:
        if args.password:
            check_rules(args.password)
    except PasswordRuleError as exc:
        print(f"chargegrid: {exc}", file=sys.stderr)
        return USAGE
    generated = generate_password() if args.generate_password else None
    async with _with_ocpp(conf) as ocpp:
        registration = Registration.PENDING if args.pending else Registration.ACCEPTED
        await ocpp.central.set_registration(args.station_id, registration)
        if args.password:
            await ocpp.set_password(args.station_id, args.password)
        if generated is not None:
            await ocpp.store_generated_password(args.station_id, generated)
        if args.security_profile:
            await ocpp.set_security_profile(args.station_id, args.security_profile)
    print(f"station {args.station_id} registered ({registration.value})")
    if generated is not None:
        print(f"password (shown once): {generated}")
    return 0


async def _set_registration(station_id: str, conf: settings.Settings, accept: bool) -> int:
    from chargegrid.domain.model import Registration

    async with _with_ocpp(conf) as ocpp:
        reg = Registration.ACCEPTED if accept else Registration.REJECTED
        await ocpp.central.set_registration(station_id, reg)
    print(f"station {station_id} {reg.value.lower()}")
    return 0


async def _station_accept(args: argparse.Namespace, conf: settings.Settings) -> int:
    return await _set_registration(args.station_id, conf, accept=True)


async def _station_reject(args: argparse.Namespace, conf: settings.Settings) -> int:
    return await _set_registration(args.station_id, conf, accept=False)


async def _station_list(args: argparse.Namespace, conf: settings.Settings) -> int:
    async with open_db(conf) as store:
        stations = await store.list_stations()
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
    print_table(header, [[r[h] for h in header] for r in rows])
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
