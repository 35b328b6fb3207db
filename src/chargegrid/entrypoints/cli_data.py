"""``chargegrid station show``, ``token``, ``tx`` and ``api-token``: the database, read and
changed directly (no server needed), with the REST API's records as the ``--json`` output.

A running server sees changed id tokens and stations within 5 s (its cache) and revoked API
tokens within 5 s as well.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, get_args

from chargegrid.entrypoints import settings
from chargegrid.entrypoints.cli_common import (
    USAGE,
    CliError,
    open_db,
    parse_time,
    print_fields,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from chargegrid.entrypoints.api.schemas import TransactionOut
    from chargegrid.service.ports import Filter, Store

Command = Callable[[argparse.Namespace, settings.Settings], Coroutine[Any, Any, int]]
MAX_ERRORS_SHOWN = 100


def _command(
    sub: Any, name: str, func: Command, helptext: str, *, json_flag: bool = False
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=helptext, description=helptext)
    if json_flag:
        parser.add_argument("--json", action="store_true", help="JSON output for scripts")
    settings.add_arguments(parser)
    parser.set_defaults(func=func)
    return parser


def add_commands(sub: Any, station_sub: Any) -> None:
    """Add ``station show`` to ``station_sub`` and the token, tx, api-token groups to ``sub``."""
    from chargegrid.entrypoints.api.schemas import TokenKindName

    show = _command(
        station_sub,
        "show",
        _station_show,
        "a station, its connectors' last status and its active transactions",
        json_flag=True,
    )
    show.add_argument("station_id")

    token = sub.add_parser("token", help="manage id tokens (RFID cards, app users, eMAIDs...)")
    token.set_defaults(help_parser=token)
    tk_sub = token.add_subparsers(title="token commands")
    add = _command(tk_sub, "add", _token_add, "create an id token")
    add.add_argument("value")
    add.add_argument(
        "--kind", choices=get_args(TokenKindName), default="ISO14443", help="(default ISO14443)"
    )
    add.add_argument("--group", help="group id (a driver's tokens share one)")
    add.add_argument("--expires", metavar="RFC3339", help="expiry, e.g. 2030-01-31T00:00:00Z")
    add.add_argument("--blocked", action="store_true", help="create it blocked")
    add.add_argument(
        "--allow-concurrent", action="store_true", help="may run several transactions at once"
    )
    add.add_argument("--owner", help="who holds it (free text)")
    imp = _command(
        tk_sub,
        "import",
        _token_import,
        "create or update id tokens from a CSV file, all or nothing",
    )
    imp.add_argument("file", type=Path, metavar="FILE.csv")
    imp.epilog = (
        "The header names some of the columns value, kind, group, expires_at, blocked, "
        "allow_concurrent, owner (value is required); the format of POST /api/v1/tokens/import. "
        "Every row is checked first: one bad row and nothing is imported (exit 1)."
    )
    _command(tk_sub, "list", _token_list, "list id tokens", json_flag=True)

    tx = sub.add_parser("tx", help="transactions")
    tx.set_defaults(help_parser=tx)
    tx_sub = tx.add_subparsers(title="tx commands")
    lst = _command(tx_sub, "list", _tx_list, "list transactions, newest first", json_flag=True)
    _tx_filters(lst)
    lst.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    shw = _command(tx_sub, "show", _tx_show, "a transaction with its meter values", json_flag=True)
    shw.add_argument("transaction_id", type=int, metavar="ID")
    exp = _command(
        tx_sub,
        "export",
        _tx_export,
        "transactions as CSV, oldest first (the columns of /api/v1/transactions/export.csv)",
    )
    _tx_filters(exp)
    exp.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here, not stdout")

    api = sub.add_parser("api-token", help="manage the REST API's bearer tokens")
    api.set_defaults(help_parser=api)
    api_sub = api.add_subparsers(title="api-token commands")
    create = _command(
        api_sub, "create", _api_token_create, "create a token; its secret is shown once"
    )
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    create.add_argument("--json", action="store_true", help="JSON output for scripts")
    _command(api_sub, "list", _api_token_list, "list tokens (never their secrets)", json_flag=True)
    revoke = _command(api_sub, "revoke", _api_token_revoke, "revoke a token")
    revoke.add_argument("token_id", type=int, metavar="ID")


def _tx_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--station", metavar="STATION_ID", help="only this station's")
    parser.add_argument("--token", metavar="ID_TOKEN", help="only those of this id token")
    parser.add_argument("--state", choices=["Active", "Ended"])
    parser.add_argument("--from", dest="started_from", metavar="RFC3339", help="started at/after")
    parser.add_argument("--to", dest="started_to", metavar="RFC3339", help="started before")


# --- stations -----------------------------------------------------------------------------------


async def _station_show(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.entrypoints.api.schemas import ConnectorOut, StationOut, TransactionOut

    async with open_db(conf) as store:
        station = await store.get_station(args.station_id)
        if station is None:
            raise CliError(f"no station {args.station_id!r}")
        connectors = [ConnectorOut.of(c) for c in await store.connector_statuses(station.id)]
        active = [TransactionOut.of(t) for t in await store.active_transactions(station.id)]
    # "connected" is what the database last recorded; the server knows the live connection.
    out = StationOut.of(station, station.online)
    if args.json:
        print_json({"station": out, "connectors": connectors, "active_transactions": active})
        return 0
    print_fields(
        [
            ("station", out.id),
            ("registration", out.registration),
            ("online", out.connected),
            ("last seen", out.last_seen),
            ("ocpp", out.ocpp_version),
            ("vendor", out.vendor),
            ("model", out.model),
            ("serial number", out.serial_number),
            ("firmware", out.firmware_version),
            ("boot reason", out.boot_reason),
            ("password set", out.password_set),
            ("password pending", out.password_pending),
            ("security profile", out.security_profile),
            ("lenient", out.lenient),
        ]
    )
    print()
    if connectors:
        print_table(
            ["evse", "connector", "status", "since", "error", "info"],
            [
                [c.evse_id, c.connector_id, c.status, c.timestamp, c.error_code, c.info]
                for c in connectors
            ],
        )
    else:
        print("no connector status reported")
    print()
    if active:
        print("active transactions:")
        _tx_table(active)
    else:
        print("no active transaction")
    return 0


# --- id tokens ----------------------------------------------------------------------------------


async def _token_add(args: argparse.Namespace, conf: settings.Settings) -> int:
    import msgspec

    from chargegrid.domain.autocharge import MacAddressError
    from chargegrid.entrypoints.api.schemas import TokenIn

    fields: dict[str, Any] = {
        "value": args.value,
        "kind": args.kind,
        "group": args.group,
        "blocked": args.blocked,
        "allow_concurrent": args.allow_concurrent,
        "owner": args.owner,
    }
    if args.expires is not None:
        fields["expires_at"] = parse_time(args.expires, "--expires")
    try:
        token = msgspec.convert(fields, TokenIn).to_domain()
    except (msgspec.ValidationError, MacAddressError) as exc:
        raise CliError(str(exc), USAGE) from exc
    async with open_db(conf) as store:
        if await store.get_token(token.value) is not None:
            raise CliError(f"id token {token.value!r} exists")
        await store.save_token(token)
    print(f"id token {token.value} created")
    return 0


async def _token_import(args: argparse.Namespace, conf: settings.Settings) -> int:

    from chargegrid.entrypoints.api.tokens import parse_csv, store_imported

    path: Path = args.file
    try:
        content = (await asyncio.to_thread(path.read_bytes)).decode("utf-8-sig")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: the CSV must be UTF-8; nothing was imported") from exc
    tokens, errors = parse_csv(content)
    if errors:
        shown = errors[:MAX_ERRORS_SHOWN]
        if len(errors) > len(shown):
            shown.append(f"... and {len(errors) - len(shown)} more")
        raise CliError(f"{path} has errors; nothing was imported", details=shown)
    async with open_db(conf) as store:  # as POST /api/v1/tokens/import does
        result = await store_imported(store, tokens, content)
    print(
        f"imported {len(tokens)} id tokens from {path}: "
        f"{result.created} created, {result.updated} updated"
    )
    return 0


async def _token_list(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.entrypoints.api.schemas import TokenOut
    from chargegrid.service.ports import ListQuery

    listed: list[TokenOut] = []
    async with open_db(conf) as store:
        query = ListQuery(sort="value", limit=500)
        while True:
            found, more = await store.page_tokens(query)
            listed.extend(TokenOut.of(t) for t in found)
            if not more or not found:
                break
            query = ListQuery(sort="value", limit=500, after=(found[-1].value, found[-1].value))
    if args.json:
        print_json(listed)
        return 0
    header = ["value", "kind", "group", "expires_at", "blocked", "allow_concurrent", "owner"]
    print_table(header, [[getattr(t, h) for h in header] for t in listed])
    return 0


# --- transactions -------------------------------------------------------------------------------


def _filters(args: argparse.Namespace) -> list[Filter]:
    from chargegrid.entrypoints.api.transactions import filters_of

    return filters_of(
        args.station,
        args.token,
        args.state,
        parse_time(args.started_from, "--from") if args.started_from else None,
        parse_time(args.started_to, "--to") if args.started_to else None,
    )


_TX_COLUMNS = ["id", "station_id", "evse_id", "connector_id", "id_token", "state", "started_at"]


def _tx_table(transactions: list[TransactionOut]) -> None:
    header = [*_TX_COLUMNS, "stopped_at", "energy_wh", "stop_reason"]
    print_table(header, [[getattr(t, h) for h in header] for t in transactions])


async def _tx_list(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.entrypoints.api.schemas import TransactionOut
    from chargegrid.service.ports import ListQuery

    if args.limit < 1:
        raise CliError("--limit must be at least 1", USAGE)
    query = ListQuery(
        sort="started_at", descending=True, limit=args.limit, filters=tuple(_filters(args))
    )
    async with open_db(conf) as store:
        found, more = await store.page_transactions(query)
    listed = [TransactionOut.of(t) for t in found]
    if args.json:
        print_json(listed)
        return 0
    _tx_table(listed)
    if more:
        print(f"(the newest {args.limit}; more with --limit)", file=sys.stderr)
    return 0


async def _tx_show(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.entrypoints.api.schemas import (
        MeterReadingOut,
        TransactionDetail,
        TransactionOut,
    )

    async with open_db(conf) as store:
        tx = await store.get_transaction(args.transaction_id)
        if tx is None:
            raise CliError(f"no transaction {args.transaction_id}")
        readings = [MeterReadingOut.of(r) for r in await store.meter_values(tx.id)]
    out = TransactionOut.of(tx)
    if args.json:
        print_json(TransactionDetail(out, readings))
        return 0
    print_fields((name, getattr(out, name)) for name in out.__struct_fields__)
    print()
    if not readings:
        print("no meter values")
        return 0
    print_table(
        ["timestamp", "measurand", "value", "unit", "phase", "context", "location"],
        [
            [r.timestamp, v.measurand, v.value, v.unit, v.phase, v.context, v.location]
            for r in readings
            for v in r.values
        ],
    )
    return 0


async def _tx_export(args: argparse.Namespace, conf: settings.Settings) -> int:
    filters = tuple(_filters(args))
    async with open_db(conf) as store:
        if args.output is None:
            _ = await _write_csv(store, filters, sys.stdout)
            return 0
        with _replacing(args.output) as out:
            count = await _write_csv(store, filters, out)
    print(f"exported {count} transactions to {args.output}", file=sys.stderr)
    return 0


@contextmanager
def _replacing(target: Path) -> Iterator[TextIO]:
    """A file beside ``target`` that replaces it on success: a failed export leaves no half
    file (and no changed one)."""
    if target.is_dir():
        raise CliError(f"cannot write {target}: it is a directory")
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from exc
    partial = Path(name)
    try:
        with open(fd, "w", newline="", encoding="utf-8") as out:
            yield out
        partial.replace(target)
    except OSError as exc:  # the disk is full, the target is a directory...
        partial.unlink(missing_ok=True)
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


async def _write_csv(store: Store, filters: tuple[Filter, ...], out: TextIO) -> int:
    """The rows of ``GET /api/v1/transactions/export.csv``: its header, columns and values."""
    from chargegrid.entrypoints.api.transactions import csv_pages

    count = 0
    async for text, rows in csv_pages(store, filters):
        out.write(text)
        count += rows
    return count


# --- API tokens ---------------------------------------------------------------------------------


async def _api_token_create(args: argparse.Namespace, conf: settings.Settings) -> int:
    import msgspec

    from chargegrid.bootstrap import SystemClock
    from chargegrid.entrypoints.api.schemas import ApiTokenCreated, ApiTokenIn, ApiTokenOut
    from chargegrid.service.access import AccessControl

    try:
        wanted = msgspec.convert({"name": args.name, "role": args.role}, ApiTokenIn)
    except msgspec.ValidationError as exc:
        raise CliError(str(exc), USAGE) from exc
    async with open_db(conf) as store:
        secret, token = await AccessControl(store, SystemClock()).create(
            wanted.name, wanted.role_value
        )
    out = ApiTokenOut.of(token)
    if args.json:
        print_json(ApiTokenCreated(secret, out))
    else:
        print(secret)  # alone on stdout, so TOKEN=$(chargegrid api-token create ...) works
    print(
        f"created API token {out.id} {out.name!r} ({out.role}); store its secret now: "
        "it will not be shown again",
        file=sys.stderr,
    )
    return 0


async def _api_token_list(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.entrypoints.api.schemas import ApiTokenOut

    async with open_db(conf) as store:
        listed = [ApiTokenOut.of(t) for t in await store.list_api_tokens()]
    if args.json:
        print_json(listed)
        return 0
    header = ["id", "name", "role", "created_at", "revoked"]
    print_table(header, [[getattr(t, h) for h in header] for t in listed])
    return 0


async def _api_token_revoke(args: argparse.Namespace, conf: settings.Settings) -> int:
    async with open_db(conf) as store:
        if not await store.revoke_api_token(args.token_id):
            raise CliError(f"no API token {args.token_id}")
    print(f"API token {args.token_id} revoked (running servers refuse it within 5 s)")
    return 0
