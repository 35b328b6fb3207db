"""``chargegrid send STATION OPERATION [JSON]``: an OCPP operation sent through a running server.

The station's connection lives in the server process, so this goes through its REST API
(``POST /api/v1/stations/{id}/commands/{operation}``). The bearer token comes from the
environment only (``CHARGEGRID_API_TOKEN``): a flag would show it in the process list.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any
from urllib.parse import quote

from chargegrid.entrypoints import settings
from chargegrid.entrypoints.cli_common import USAGE, CliError

DEFAULT_API_URL = "http://127.0.0.1:8080"

UNREACHABLE = 3
REFUSED = 4  # 401, 403: no valid token, or not an operator's
NOT_FOUND = 5  # 404
NOT_CONNECTED = 6  # 409
INVALID = 7  # 422
CALL_ERROR = 8  # 502
TIMEOUT = 9  # 504
_BY_STATUS = {
    401: REFUSED,
    403: REFUSED,
    404: NOT_FOUND,
    409: NOT_CONNECTED,
    422: INVALID,
    502: CALL_ERROR,
    504: TIMEOUT,
}

EPILOG = f"""\
The payload is the operation's OCPP request in the station's version, with its own field names
(e.g. Reset '{{"type": "Soft"}}'); '-' reads it from stdin; none sends {{}}. The answer printed
is the station's response payload, as JSON.

environment:
  CHARGEGRID_API_TOKEN  an operator or admin API token (required; never a flag, which other
                        users could read in the process list)
  CHARGEGRID_API_URL    the server's REST API (default {DEFAULT_API_URL})

exit codes:
  0  the station answered (whatever it decided, e.g. {{"status": "Rejected"}})
  1  any other failure
  2  bad arguments, payload not a JSON object, or CHARGEGRID_API_TOKEN not set
  {UNREACHABLE}  the API could not be reached
  {REFUSED}  the API refused the token (401, 403: unknown, revoked or only a viewer's)
  {NOT_FOUND}  no such station (404)
  {NOT_CONNECTED}  the station is not connected (409)
  {INVALID}  the payload fails the version's schema, or no such operation (422)
  {CALL_ERROR}  the station answered with a CALLERROR (502)
  {TIMEOUT}  the station did not answer in time (504), or the API did not
"""


def add_command(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "send",
        help="send an OCPP operation to a connected station through the running server",
        description="Send an OCPP operation to a station through the running server's REST API "
        "and print the station's answer.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("station_id", metavar="STATION")
    parser.add_argument("operation", metavar="OPERATION", help="e.g. Reset, GetConfiguration")
    parser.add_argument("payload", metavar="JSON", nargs="?", help="the request payload")
    parser.add_argument(
        "--api-url", help=f"the REST API (default $CHARGEGRID_API_URL or {DEFAULT_API_URL})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds the server waits for the station's answer (default 30, at most 300)",
    )
    parser.set_defaults(func=_send)


def _payload(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    if raw == "-":
        raw = sys.stdin.read()
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CliError(f"the payload is not JSON: {exc}", USAGE) from exc
    if not isinstance(payload, dict):
        raise CliError("the payload must be a JSON object", USAGE)
    return payload


async def _send(args: argparse.Namespace, conf: settings.Settings) -> int:
    import logging

    import httpx

    payload = _payload(args.payload)
    secret = os.environ.get("CHARGEGRID_API_TOKEN", "").strip()
    if not secret:
        raise CliError(
            "set CHARGEGRID_API_TOKEN to an operator's API token "
            "(chargegrid api-token create NAME --role operator)",
            USAGE,
        )
    if not 0 < args.timeout <= 300:
        raise CliError("--timeout must be more than 0 and at most 300 seconds", USAGE)
    base = (args.api_url or os.environ.get("CHARGEGRID_API_URL") or DEFAULT_API_URL).rstrip("/")
    url = (
        f"{base}/api/v1/stations/{quote(args.station_id, safe='')}"
        f"/commands/{quote(args.operation, safe='')}"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(args.timeout + 10, connect=5)) as http:
            response = await http.post(
                url,
                json=payload,
                params={"timeout": args.timeout},
                headers={"Authorization": f"Bearer {secret}"},
            )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise CliError(f"bad API URL {base!r}: {exc}", USAGE) from exc
    except httpx.ReadTimeout as exc:
        raise CliError(
            f"no answer from the API at {base} in {args.timeout + 10:g} s", TIMEOUT
        ) from exc
    except httpx.HTTPError as exc:
        raise CliError(
            f"cannot reach the API at {base}: {str(exc) or type(exc).__name__} "
            "(is chargegrid serve running? see --api-url)",
            UNREACHABLE,
        ) from exc
    body = _json(response)
    if response.status_code == 200 and isinstance(body, dict) and "response" in body:
        print(json.dumps(body["response"], indent=2))
        return 0
    raise _error(response.status_code, body, base)


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error(status: int, body: Any, base: str) -> CliError:
    detail = body.get("detail") if isinstance(body, dict) else None
    extra = body.get("extra") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail:
        detail = f"HTTP {status} from {base} (is it chargegrid's REST API?)"
    details: list[str] = []
    if isinstance(extra, dict):
        errors = extra.get("errors")
        if isinstance(errors, list):
            details.extend(str(e) for e in errors)
        if status == 502 and extra.get("details"):
            details.append(f"details: {json.dumps(extra['details'])}")
    return CliError(detail, _BY_STATUS.get(status, 1), details)
