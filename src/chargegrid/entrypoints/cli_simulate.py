"""``chargegrid simulate``: a fleet of simulated charging stations against a running CSMS.

The stations are :mod:`chargegrid.testing.simulator`'s. With an operator's API token in the
environment (``CHARGEGRID_API_TOKEN``, or the ``CHARGEGRID_ADMIN_TOKEN`` the server was started
with) they are first registered as accepted and their id tokens created through the REST API, so
a fresh ``chargegrid serve`` takes them at once. A live summary goes to stderr, at most once a
second; the report (latency per action) to stdout when the run ends (``--duration``, or Ctrl-C:
sessions are stopped first; a second Ctrl-C quits at once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from chargegrid.entrypoints import settings
from chargegrid.entrypoints.cli_common import USAGE, CliError, print_table

EPILOG = """\
A scenario file (TOML or JSON) takes the same keys with underscores (meter_interval = 5) and
more: connectors, max_power (W), first_arrival, idle, session, fault_time (s, [min, max]),
fault_chance, reconnects_per_hour, call_timeout, password; options win over it.

environment:
  CHARGEGRID_API_TOKEN    an operator's API token: the stations and their id tokens are
                          registered through the REST API first (CHARGEGRID_ADMIN_TOKEN too)
  CHARGEGRID_STATION_PASSWORD
                          the stations' Basic-auth password (security profile 1), 16-40 chars

Without a token, start the server with --unknown-stations accept and give --tokens it knows.
"""


def add_command(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "simulate",
        help="run simulated charging stations (OCPP 1.6J and 2.0.1) against a CSMS",
        description="Connect simulated charging stations that boot, charge cars, meter them, "
        "fault, reconnect and answer every CSMS-initiated operation; report the latency of "
        "each action.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--url", help="the CSMS's OCPP endpoint, station id appended (ws://127.0.0.1:9000/ocpp)")
    add("--stations", type=int, help="how many stations (10)")
    add("--version", choices=["1.6", "2.0.1", "mixed"], help="OCPP version (mixed: alternate)")
    add("--prefix", help="station ids are PREFIX00001... (SIM-)")
    add("--first", type=int, help="number of the first station (1)")
    add("--tokens", help="comma-separated id tokens the cars use (one of its own per station)")
    add("--duration", type=float, help="seconds to run (until Ctrl-C)")
    add("--rate", type=float, help="connections opened per second, 0 for all at once (20)")
    add("--meter-interval", type=float, help="seconds between meter values (10)")
    add("--seed", type=int, help="same seed, same fleet (1)")
    add("--connectors", type=int, help="connectors (EVSEs) per station (1)")
    add("--api-url", help="chargegrid's REST API, to register stations (http://127.0.0.1:8080)")
    add("--no-prepare", action="store_true", help="register nothing through the REST API")
    add("--scenario", type=Path, help="TOML or JSON file with the same keys")
    add("--json", action="store_true", help="the final report as JSON")
    add("--log-level", choices=["debug", "info", "warning", "error"], help="(info)")
    parser.set_defaults(func=_simulate)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    tokens = [t.strip() for t in args.tokens.split(",") if t.strip()] if args.tokens else None
    return {
        "url": args.url,
        "stations": args.stations,
        "version": args.version,
        "prefix": args.prefix,
        "first": args.first,
        "tokens": tokens,
        "duration": args.duration,
        "rate": args.rate,
        "meter_interval": args.meter_interval,
        "seed": args.seed,
        "connectors": args.connectors,
        "api_url": args.api_url,
        "prepare": False if args.no_prepare else None,
        "password": os.environ.get("CHARGEGRID_STATION_PASSWORD") or None,
    }


async def _simulate(args: argparse.Namespace, conf: settings.Settings) -> int:
    from chargegrid.testing.simulator import Fleet, PrepareError, ScenarioError, load, prepare

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    try:
        scenario = load(args.scenario, _overrides(args))
    except ScenarioError as exc:
        raise CliError(str(exc), USAGE) from exc
    fleet = Fleet(scenario)
    secret = os.environ.get("CHARGEGRID_API_TOKEN") or os.environ.get("CHARGEGRID_ADMIN_TOKEN")
    if scenario.prepare and secret:
        tokens = {t for s in fleet.stations for t in s.params.tokens}
        try:
            await prepare(
                scenario.api_url, secret, scenario.station_ids(), tokens, scenario.password
            )
        except PrepareError as exc:
            raise CliError(f"{exc} (or --no-prepare)") from exc
        _note(
            f"{scenario.stations} stations and {len(tokens)} id tokens registered at "
            f"{scenario.api_url}"
        )
    elif scenario.prepare:
        _note(
            "no CHARGEGRID_API_TOKEN: nothing registered; unknown stations may be answered "
            "Pending (chargegrid serve --unknown-stations accept) and unknown id tokens Invalid"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second one quits at once
            loop.remove_signal_handler(sig)
        _note("stopping: ending the sessions (Ctrl-C again to quit at once)")

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted)
    live = _Live(sys.stderr)
    _note(f"{scenario.stations} stations ({scenario.version}) -> {scenario.url}")
    try:
        report = await fleet.run(stop, on_summary=live.show)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    live.end()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0


def _note(text: str) -> None:
    print(f"chargegrid simulate: {text}", file=sys.stderr)


class _Live:
    """The summary line: rewritten in place on a terminal, every 10 s to a file or a pipe."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = -10.0

    def show(self, s: Any) -> None:
        line = (
            f"{s.elapsed_s:6.0f} s  connected {s.connected}/{s.stations}  booted {s.booted}  "
            f"charging {s.charging}  power {s.power_kw:,.1f} kW  "
            f"msg/s {s.messages_per_s:,.0f}  errors {s.errors} (CALLERROR {s.call_errors})"
        )
        if self.tty:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
        elif s.elapsed_s - self._last >= 10:
            self._last = s.elapsed_s
            print(line, file=self.stream, flush=True)

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _print_report(report: dict[str, Any]) -> None:
    versions = ", ".join(f"{v}: {n}" for v, n in sorted(report["versions"].items()))
    call_errors = {
        f"{action}: {code}": n
        for action, codes in report["call_errors"].items()
        for code, n in codes.items()
    }
    errors = (
        sum(report["failed_calls"].values())
        + sum(call_errors.values())
        + sum(report["errors"].values())
    )
    print(
        f"{report['stations']} stations ({versions}), {report['duration_s']} s, "
        f"{report['messages_per_s']:,} messages/s, {report['connects']} connections, "
        f"{errors} errors"
    )
    rows = [
        [action, lat["count"], f"{lat['p50']:.1f}", f"{lat['p99']:.1f}"]
        for action, lat in report["latency_ms"].items()
    ]
    print_table(["action", "count", "p50 ms", "p99 ms"], rows)
    for title, counts in (
        ("CSMS calls answered", report["csms_calls_answered"]),
        ("CALLERRORs", call_errors),
        ("failed calls", report["failed_calls"]),
        ("errors", report["errors"]),
    ):
        if counts:
            print(f"{title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
