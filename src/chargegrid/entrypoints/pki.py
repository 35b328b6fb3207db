"""``chargegrid pki``: a test V2G PKI and its OCSP responder, for trying Plug & Charge.

* ``chargegrid pki init DIR [--emaid EMAID ...] [--ocsp-url URL]`` makes the ISO 15118-2 PKI of
  :mod:`chargegrid.adapters.pki.v2g` in DIR, with a contract certificate per eMAID, and writes
  ``v2g-trust.pem`` (the MO and V2G roots and sub-CAs: give it to ``serve --v2g-trust``);
* ``chargegrid pki contract DIR EMAID`` issues one more contract certificate;
* ``chargegrid pki revoke DIR NAME`` revokes a certificate (``contract-EMAID``, ``mo-sub2``...);
* ``chargegrid pki ocsp DIR [--host H] [--port P]`` runs the OCSP responder: ``POST /`` with
  ``application/ocsp-request``, and ``GET /<base64 request>`` (RFC 6960 appendix A.1).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import signal
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath

from chargegrid.adapters.pki.ocsp_responder import OcspResponder
from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.entrypoints.api.server import ApiServer
from chargegrid.entrypoints.cli_common import USAGE, CliError

OCSP_RESPONSE = "application/ocsp-response"
TRUST_FILE = "v2g-trust.pem"
_TRUSTED = ("v2g-root", "cpo-sub1", "cpo-sub2", "mo-root", "mo-sub1", "mo-sub2")


def add_commands(sub: Any) -> None:
    pki = sub.add_parser("pki", help="a test ISO 15118 PKI and OCSP responder (Plug & Charge)")
    pki.set_defaults(help_parser=pki)
    cmds = pki.add_subparsers(title="pki commands")
    init = cmds.add_parser("init", help="make a V2G, MO and OEM test PKI in a folder")
    init.add_argument("folder", type=Path)
    init.add_argument("--emaid", action="append", default=[], help="a contract (repeatable)")
    init.add_argument("--ocsp-url", help="the responder every certificate names (AIA)")
    init.set_defaults(func=_init)
    contract = cmds.add_parser("contract", help="issue a contract certificate for an eMAID")
    contract.add_argument("folder", type=Path)
    contract.add_argument("emaid")
    contract.set_defaults(func=_contract)
    revoke = cmds.add_parser("revoke", help="revoke a certificate of the PKI by its name")
    revoke.add_argument("folder", type=Path)
    revoke.add_argument("name", help="e.g. contract-DEABCC123456789, mo-sub2")
    revoke.set_defaults(func=_revoke)
    run = cmds.add_parser("ocsp", help="run the PKI's OCSP responder")
    run.add_argument("folder", type=Path)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8888)
    run.set_defaults(func=_ocsp)


def ocsp_app(responder: OcspResponder) -> Litestar:
    """The responder over HTTP (RFC 6960 appendix A)."""

    @post("/", status_code=200)
    async def by_post(request: Request[Any, Any, Any]) -> Response[bytes]:
        return _answer(responder, await request.body())

    @get("/{encoded:path}")
    async def by_get(encoded: FromPath[str]) -> Response[bytes]:
        try:
            der = base64.b64decode(encoded.lstrip("/"), validate=True)
        except (binascii.Error, ValueError):
            der = b""
        return _answer(responder, der)

    return Litestar([by_post, by_get], openapi_config=None, logging_config=None)


def _answer(responder: OcspResponder, der: bytes) -> Response[bytes]:
    return Response(responder.respond(der), media_type=OCSP_RESPONSE)


def write_trust(pki: TestPki) -> Path:
    path = pki.folder / TRUST_FILE
    path.write_text("".join(pki.pem(name) for name in _TRUSTED))
    return path


def _load(folder: Path) -> TestPki:
    try:
        return TestPki.load(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"no test PKI in {folder}: {exc}") from exc


async def _init(args: argparse.Namespace, _conf: Any) -> int:
    if (args.folder / "index.json").exists():
        raise CliError(f"{args.folder} holds a PKI already", USAGE)
    pki = await asyncio.to_thread(TestPki.create, args.folder, tuple(args.emaid), args.ocsp_url)
    trust = write_trust(pki)
    print(f"test PKI in {args.folder}: {len(pki.certs)} certificates; trust bundle {trust}")
    for emaid in args.emaid:
        print(f"  contract {emaid}: {args.folder / f'contract-{emaid}.pem'}")
    return 0


async def _contract(args: argparse.Namespace, _conf: Any) -> int:
    pki = _load(args.folder)
    stem = pki.contract(args.emaid)
    print(f"contract {args.emaid}: {args.folder / f'{stem}.pem'}")
    return 0


async def _revoke(args: argparse.Namespace, _conf: Any) -> int:
    pki = _load(args.folder)
    if args.name not in pki.certs:
        raise CliError(f"no certificate {args.name!r}; known: {', '.join(sorted(pki.certs))}")
    serial = OcspResponder(pki).revoke(args.name)
    print(f"{args.name} revoked (serial {serial:X})")
    return 0


async def _ocsp(args: argparse.Namespace, _conf: Any) -> int:
    server = ApiServer(ocsp_app(OcspResponder(_load(args.folder))), args.host, args.port)
    await server.start()
    print(f"OCSP responder for {args.folder} at http://{args.host}:{server.port}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    return 0
