"""``chargegrid site``: sites and their electrical trees, in the database directly (no server
needed). A running server sees the change within 5 s. The documents are the REST API's
(``PUT /api/v1/sites/{id}`` and what ``GET`` returns), checked by the same rules.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

from chargegrid.entrypoints import settings
from chargegrid.entrypoints.cli_common import USAGE, CliError, open_db, print_json, print_table


def add_commands(sub: Any) -> None:
    site = sub.add_parser("site", help="sites and their electrical trees (load balancing)")
    site.set_defaults(help_parser=site)
    site_sub = site.add_subparsers(title="site commands")

    def command(name: str, func: Any, helptext: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = site_sub.add_parser(
            name, help=helptext, description=helptext
        )
        settings.add_arguments(parser)
        parser.set_defaults(func=func)
        return parser

    put = command("put", _put, "create or replace a site from a JSON document (- for stdin)")
    put.add_argument("site_id")
    put.add_argument("file")
    show = command("show", _show, "a site, its circuits and its EVSEs")
    show.add_argument("site_id")
    show.add_argument("--json", action="store_true", help="the document, as JSON")
    listing = command("list", _list, "the sites")
    listing.add_argument("--json", action="store_true", help="JSON output for scripts")
    remove = command("delete", _delete, "delete a site")
    remove.add_argument("site_id")
    evse = command("evse", _evse, "put an EVSE on a circuit of a site")
    evse.add_argument("site_id")
    evse.add_argument("station_id")
    evse.add_argument("evse_id", type=int)
    evse.add_argument("--circuit", required=True)
    evse.add_argument("--wiring", default="L1L2L3", help="L1L2L3, L2L3L1, L3L1L2, ... or L1")
    evse.add_argument("--max-a", type=float, default=32.0)
    evse.add_argument("--min-a", type=float, default=6.0)
    evse.add_argument(
        "--fallback-a",
        type=float,
        help="what it may draw when not steered (default: --min-a, or --max-a with --no-smart)",
    )
    evse.add_argument("--no-smart", action="store_true", help="the station takes no profiles")


@asynccontextmanager
async def _sites(conf: settings.Settings) -> AsyncIterator[Any]:
    from chargegrid.adapters.storage.sites import open_site_store
    from chargegrid.bootstrap import SystemClock
    from chargegrid.service.sites import Sites

    async with open_db(conf):  # migrates the database first
        pass
    store = open_site_store(conf.db)
    sites = Sites(store, SystemClock())
    try:
        await sites.load()
        yield sites
    finally:
        await store.close()


async def _change(conf: settings.Settings, change: Any) -> Any:
    from chargegrid.domain.site import SiteError
    from chargegrid.service.sites import SiteConflict, SiteNotFound

    async with _sites(conf) as sites:
        try:
            return await change(sites)
        except (SiteError, SiteConflict, SiteNotFound) as exc:
            raise CliError(str(exc)) from exc


async def _put(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.domain.site import Circuit, Policy, Site, SiteError
    from chargegrid.entrypoints.api.sites import SiteIn, slot_of

    try:
        raw = msgspec.json.decode(await asyncio.to_thread(_read, args.file))
        # what ``show --json`` printed carries the site's id
        if isinstance(raw, dict) and "id" in raw and raw.pop("id") != args.site_id:
            raise CliError(f"{args.file} is the document of another site", USAGE)
        data = msgspec.convert(raw, type=SiteIn)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc}", USAGE) from exc
    except msgspec.ValidationError as exc:
        raise CliError(f"{args.file}: {exc}", USAGE) from exc
    except msgspec.DecodeError as exc:
        raise CliError(f"{args.file} is not JSON: {exc}", USAGE) from exc

    async def put(sites: Any) -> Any:
        try:
            site = Site(
                args.site_id,
                tuple(Circuit(c.id, c.parent, c.limit_a, c.limit_w) for c in data.circuits),
                tuple(slot_of(e.station_id, e.evse_id, e) for e in data.evses),
                data.voltage_v,
                data.name,
                Policy(data.policy),
            )
        except SiteError as exc:
            raise CliError(str(exc)) from exc
        return await sites.put(site)

    site = await _change(conf, put)
    print(f"site {site.id}: {len(site.circuits)} circuits, {len(site.evses)} EVSEs")
    return 0


def _read(file: str) -> bytes:
    return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()


async def _show(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.entrypoints.api.sites import site_out

    site = await _change(conf, lambda sites: _get(sites, args.site_id))
    out = site_out(site)
    if args.json:
        print_json(out)
        return 0
    print(f"site {out.id} ({out.name or 'no name'}): {out.voltage_v:g} V, policy {out.policy}")
    print_table(
        ["circuit", "parent", "limit A", "limit W"],
        [(c.id, c.parent, c.limit_a, c.limit_w) for c in out.circuits],
    )
    print_table(
        ["EVSE", "circuit", "wiring", "min A", "max A", "smart", "fallback A"],
        [
            (
                f"{e.station_id}/{e.evse_id}",
                e.circuit,
                e.wiring,
                e.min_a,
                e.max_a,
                e.smart,
                e.fallback_a,
            )
            for e in out.evses
        ],
    )
    return 0


async def _get(sites: Any, site_id: str) -> Any:
    return sites.get(site_id)


async def _list(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.entrypoints.api.sites import site_out

    async def everything(sites: Any) -> Any:
        return sites.all()

    listed = [site_out(s) for s in await _change(conf, everything)]
    if args.json:
        print_json(listed)
        return 0
    print_table(
        ["site", "name", "policy", "circuits", "EVSEs"],
        [(s.id, s.name, s.policy, len(s.circuits), len(s.evses)) for s in listed],
    )
    return 0


async def _delete(args: argparse.Namespace, conf: settings.Settings) -> int:
    async def remove(sites: Any) -> Any:
        return await sites.delete(args.site_id)

    if not await _change(conf, remove):
        raise CliError(f"no site {args.site_id!r}")
    print(f"site {args.site_id} deleted")
    return 0


async def _evse(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.domain.site import SiteError, slot

    async def place(sites: Any) -> Any:
        try:
            placed = slot(
                args.station_id,
                args.evse_id,
                args.circuit,
                args.wiring,
                max_a=args.max_a,
                min_a=args.min_a,
                smart=not args.no_smart,
                fallback_a=args.fallback_a,
            )
        except SiteError as exc:
            raise CliError(str(exc), USAGE) from exc
        return await sites.place(args.site_id, placed)

    await _change(conf, place)
    print(f"EVSE {args.station_id}/{args.evse_id} on circuit {args.circuit} of {args.site_id}")
    return 0
