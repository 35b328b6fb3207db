"""How many stations a node holds: a boot storm, then a realistic mix, on one node and on three.

    python benchmarks/fleet_scale.py [--stations 10000] [--steady 120] [--quick]
        [--passwords chosen|generated]

Three setups, one after the other (``--setups``): ``sqlite``, one node on SQLite (the default
deployment); ``pg``, one node on PostgreSQL; ``cluster``, three nodes in cluster mode on
PostgreSQL and NATS (``--cluster``), compared with ``pg``. Each starts ``chargegrid serve``
(``--unknown-stations accept``, ``--heartbeat-interval 120``, the message log on, log level
warning) on a fresh database holding the fleet's id tokens, every node pinned to CPU core 0
(``taskset -c 0``), and runs the fleet simulator (:mod:`chargegrid.testing.simulator`, picows,
uvloop) in this process, pinned to core 1:

1. **boot storm**: all ``--stations`` stations (half OCPP 1.6, half 2.0.1) open their WebSocket
   at once and send BootNotification; the node paces them (``--boot-rate``: a boot over the
   rate is answered Pending with the interval to come back at) and a station answered Pending
   boots again after that interval. Reported: seconds until every station is connected, and
   until every one is Accepted (the issue's target: within 60 s), and how many BootNotifications
   that took.
2. **steady state**, ``--settle`` s later (the storm's tail of StatusNotifications): the stations
   go on with the simulator's life for ``--steady`` seconds: Heartbeat at the node's interval,
   StatusNotification, cars arriving (each station's first within ``--first-arrival`` s of its
   boot, then after 1 to 10 minutes idle), Authorize, StartTransaction / TransactionEvent,
   MeterValues every ``--meter-interval`` s, faults, rare reconnections. Reported: stations held
   (connected and Accepted at the end), station CALLs answered per second and frames per second
   both ways, p50 / p99 latency of each action and of all (a CALL's frame sent to its
   CALLRESULT) beside the nodes' own mean (``/metrics``), writes per commit, the nodes' share of
   core 0 and the simulator's of core 1, and the nodes' resident memory (VmRSS, summed) before
   the fleet and after the steady state, per station held.

The two PostgreSQL setups are skipped with a message when PostgreSQL (``--pg``) or, for the
cluster, NATS (``--nats``) is not reachable. The cluster's stations are spread over its nodes in
equal shares. This machine has two cores: the three nodes share core 0 (PostgreSQL and NATS run
unpinned), so three nodes against one measures what clustering costs at the same CPU, not
scale-out.

``--passwords chosen`` gives every station a Basic-auth password (security profile 1) hashed as
one a person chose: each station's first connection then runs PBKDF2 (120,000 iterations) in the
handshake, on the node's event loop. ``--passwords generated`` hashes it as one chargegrid
generated (one iteration: :mod:`chargegrid.domain.passwords`).

Figures are reported, never asserted: the exit status is 1 only if a setup did not get every
station Accepted, or a station's CALL failed. ``--quick`` (300 stations, 6 s of steady state)
checks the script in under a minute. Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx

from chargegrid.adapters.storage.migrate import upgrade
from chargegrid.adapters.storage.store import open_store
from chargegrid.domain.model import IdToken, Registration, Station
from chargegrid.domain.passwords import generate_password, hash_generated, hash_password
from chargegrid.testing.simulator import Scenario
from chargegrid.testing.simulator.fleet import Fleet
from chargegrid.testing.simulator.station import Link
from chargegrid.testing.simulator.stats import Stats

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is not built for Windows
    uvloop = None  # type: ignore[assignment]

SERVER_CORE = 0
CLIENT_CORE = 1
PASSWORD = generate_password()  # the benchmark stations' (a generated one fits either kind)
STORM_TARGET_S = 60.0
PREFIX = "FS-"
SETUPS = ("sqlite", "pg", "cluster")
ADMIN_TOKEN = "fleet-scale-admin-token-0123456789"  # noqa: S105 - for /metrics, made up
CLUSTER_SECRET = "fleet-scale-cluster-secret-0123456789"  # noqa: S105 - made up


class BenchError(Exception):
    """A setup could not be run (a server did not start, a database could not be made)."""


@dataclass(frozen=True)
class Config:
    stations: int
    steady_s: float
    storm_timeout_s: float
    meter_interval_s: float
    version: Literal["1.6", "2.0.1", "mixed"]
    passwords: str | None  # None, "chosen" (120,000 iterations) or "generated" (one)
    setups: tuple[str, ...]
    first_arrival_s: float
    settle_s: float
    boot_rate: float | None
    heartbeat_s: int
    pg: str
    nats: str
    quick: bool


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stations", type=int, help="stations in the fleet (10,000; --quick 300)")
    p.add_argument("--steady", type=float, help="seconds of steady state (120; --quick 6)")
    p.add_argument("--storm-timeout", type=float, default=300.0, help="give up the storm after")
    p.add_argument("--meter-interval", type=float, default=60.0, help="MeterValues every (s)")
    p.add_argument("--version", choices=("1.6", "2.0.1", "mixed"), default="mixed")
    p.add_argument(
        "--passwords",
        choices=("chosen", "generated"),
        help="a Basic-auth password per station: chosen by a person (PBKDF2, 120,000 "
        "iterations) or generated by chargegrid (one iteration)",
    )
    p.add_argument(
        "--setups",
        default=",".join(SETUPS),
        help="which to run, of sqlite (one node), pg (one node), cluster (three nodes on pg)",
    )
    p.add_argument(
        "--first-arrival",
        type=float,
        help="each station's first car arrives within this many s of its boot (300; --quick 20)",
    )
    p.add_argument("--settle", type=float, help="s between the storm and the steady state (30)")
    p.add_argument("--boot-rate", type=float, help="the nodes' --boot-rate (their default)")
    p.add_argument(
        "--heartbeat-interval",
        type=int,
        default=120,
        help="the nodes' --heartbeat-interval, s (120: every station beats in the steady state)",
    )
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--nats", default="nats://127.0.0.1:4222")
    p.add_argument("--quick", action="store_true", help="300 stations, 6 s: a check")
    a = p.parse_args(argv)
    setups = tuple(name for name in SETUPS if name in a.setups.split(","))
    if not setups or set(a.setups.split(",")) - set(SETUPS):
        p.error(f"--setups takes some of {','.join(SETUPS)}")
    return Config(
        stations=a.stations or (300 if a.quick else 10_000),
        steady_s=a.steady or (6.0 if a.quick else 120.0),
        storm_timeout_s=a.storm_timeout,
        meter_interval_s=a.meter_interval,
        version=a.version,
        passwords=a.passwords,
        setups=setups,
        first_arrival_s=a.first_arrival or (20.0 if a.quick else 300.0),
        settle_s=a.settle if a.settle is not None else (1.0 if a.quick else 30.0),
        boot_rate=a.boot_rate,
        heartbeat_s=a.heartbeat_interval,
        pg=a.pg,
        nats=a.nats,
        quick=a.quick,
    )


# --- machine ---------------------------------------------------------------------------------


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pinning() -> list[str]:
    """Pin this process to CLIENT_CORE; the prefix that pins a server to SERVER_CORE."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        say("  (not pinned: one core, or no sched_setaffinity on this OS)")
        return []
    os.sched_setaffinity(0, {CLIENT_CORE})
    taskset = shutil.which("taskset")
    if taskset is None:
        say("  (servers NOT pinned: no taskset)")
        return []
    return [taskset, "-c", str(SERVER_CORE)]


def machine_line() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def say(text: str = "") -> None:
    print(text, flush=True)


# --- servers ---------------------------------------------------------------------------------


_METRICS = (
    "chargegrid_ocpp_answer_seconds_sum",
    "chargegrid_ocpp_answer_seconds_count",
    "chargegrid_store_writes_total",
    "chargegrid_store_commits_total",
)


class Node:
    """One ``chargegrid serve`` process: start, wait for its port, read its RSS and CPU, stop."""

    def __init__(
        self, name: str, argv: list[str], port: int, api_port: int, log_path: Path
    ) -> None:
        self.name, self.argv, self.port, self.log_path = name, argv, port, log_path
        self.api_port = api_port
        self.proc: subprocess.Popen[bytes] | None = None
        self._tick = os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_nofile,
                start_new_session=True,
                env=dict(
                    os.environ,
                    CHARGEGRID_ADMIN_TOKEN=ADMIN_TOKEN,
                    CHARGEGRID_CLUSTER_SECRET=CLUSTER_SECRET,
                ),
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        ends = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode}\n{self.tail()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > ends:
                    raise BenchError(f"{self.name} did not open port {self.port}") from None
                await asyncio.sleep(0.1)
            else:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError("no VmRSS in /proc status")

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick

    async def metrics(self, client: httpx.AsyncClient) -> dict[str, float]:
        """The node's /metrics samples we use, by name with labels (the Prometheus text)."""
        url = f"http://127.0.0.1:{self.api_port}/metrics"
        response = await client.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        samples: dict[str, float] = {}
        for line in response.text.splitlines():
            if line.startswith(_METRICS):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join("    " + line for line in text[-lines:])
        return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def wait_idle(nodes: list[Node], limit: float = 20.0) -> None:
    """Until the nodes (nearly) stop using CPU: started up, or done with a fleet."""
    ends = time.monotonic() + limit
    quiet, last = 0, sum(n.cpu_s() for n in nodes)
    while time.monotonic() < ends and quiet < 3:
        await asyncio.sleep(0.5)
        now = sum(n.cpu_s() for n in nodes)
        quiet = quiet + 1 if now - last < 0.05 * len(nodes) else 0
        last = now


# --- databases -------------------------------------------------------------------------------


async def pg_reachable(admin: str) -> str | None:
    """Why PostgreSQL at ``admin`` cannot be used, or None."""
    try:
        conn = await asyncpg.connect(admin, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def nats_reachable(url: str) -> str | None:
    host, _, port = url.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def pg_admin(admin: str, statement: str) -> None:
    conn = await asyncpg.connect(admin, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def register(url: str, scenario: Scenario, passwords: str | None) -> None:
    """The fleet's id tokens (unknown ones are Invalid, and no car would charge) and, with
    ``passwords``, its stations Accepted with PASSWORD: one hash for all (PBKDF2 costs 50 ms)."""
    digest = (
        None
        if passwords is None
        else hash_generated(PASSWORD)
        if passwords == "generated"
        else hash_password(PASSWORD)
    )
    store = await open_store(url)
    try:
        for index in range(scenario.stations):
            for value in scenario.tokens_of(index):
                await store.save_token(IdToken(value))
        if digest is not None:
            for station_id in scenario.station_ids():
                await store.save_station(
                    Station(station_id, registration=Registration.ACCEPTED, password_hash=digest)
                )
    finally:
        await store.close()


# --- a run -----------------------------------------------------------------------------------


@dataclass
class Result:
    nodes: int
    db: str
    stations: int
    connected_s: float | None = None  # every station connected, from the storm's start
    accepted_s: float | None = None  # every station Accepted
    accepted: int = 0
    boots_sent: int = 0
    storm_cpu_s: float = 0.0
    held: int = 0
    steady_s: float = 0.0
    calls_per_s: float = 0.0
    frames_per_s: float = 0.0
    cpu_share: float = 0.0  # of core 0, by the nodes, in the steady state
    latency_ms: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    all_ms: tuple[int, float, float] = (0, 0.0, 0.0)
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    server_mean_ms: dict[str, float] = field(default_factory=dict)  # the nodes' own timing
    writes_per_commit: float = 0.0
    client_cpu_share: float = 0.0  # of core 1, by this process (the simulator)

    @property
    def kib_per_station(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.held if self.held else 0.0


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def latencies(stats: Stats) -> tuple[dict[str, tuple[int, float, float]], tuple[int, float, float]]:
    per: dict[str, tuple[int, float, float]] = {}
    everything: list[float] = []
    total = 0
    for action, lat in sorted(stats.latencies.items()):
        ordered = sorted(lat.kept)
        per[action] = (lat.count, _percentile(ordered, 0.5), _percentile(ordered, 0.99))
        everything.extend(lat.kept)
        total += lat.count
    everything.sort()
    return per, (total, _percentile(everything, 0.5), _percentile(everything, 0.99))


async def run_setup(cfg: Config, count: int, db: str, prefix: list[str], tmp: Path) -> Result:
    nodes: list[Node] = []
    for n in range(count):
        port, api_port = free_port(), free_port()
        argv = [
            *prefix,
            sys.executable,
            "-m",
            "chargegrid.entrypoints.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--ocpp-port",
            str(port),
            "--api-port",
            str(api_port),
            "--db",
            db,
            "--unknown-stations",
            "accept",
            "--heartbeat-interval",
            str(cfg.heartbeat_s),
            "--log-level",
            "warning",
        ]
        if count > 1:
            argv += ["--cluster", cfg.nats]
        if cfg.boot_rate is not None:
            argv += ["--boot-rate", f"{cfg.boot_rate:g}"]
        nodes.append(Node(f"node {n + 1}", argv, port, api_port, tmp / f"node{count}-{n + 1}.log"))
    result = Result(count, "PostgreSQL" if db.startswith("postgresql") else "SQLite", cfg.stations)
    try:
        for node in nodes:  # one after the other: the first migrates nothing, but takes the lease
            node.start()
            await node.wait_ready()
        await wait_idle(nodes)
        result.rss_before_kib = sum(n.rss_kib() for n in nodes)
        await drive(cfg, nodes, result)
    finally:
        for node in nodes:
            node.stop()
    return result


async def drive(cfg: Config, nodes: list[Node], result: Result) -> None:
    stats = Stats()
    fleets: list[Fleet] = []
    share, extra = divmod(cfg.stations, len(nodes))
    first = 1
    for i, node in enumerate(nodes):
        size = share + (1 if i < extra else 0)
        scenario = Scenario(
            url=f"ws://127.0.0.1:{node.port}/ocpp",
            stations=size,
            first=first,
            version=cfg.version,
            prefix=PREFIX,
            rate=0.0,  # a storm: everyone at once
            meter_interval=cfg.meter_interval_s,
            password=PASSWORD if cfg.passwords else None,
            first_arrival=cfg.first_arrival_s,
            prepare=False,
            seed=1 + i,
        )
        fleets.append(Fleet(scenario, stats=stats))
        first += size
    links = [link for fleet in fleets for link in fleet.links]
    stop = asyncio.Event()
    cpu0 = sum(n.cpu_s() for n in nodes)
    started = time.monotonic()
    runs = [
        asyncio.create_task(f.run(stop=stop, wind_down_s=3.0 if cfg.quick else 5.0)) for f in fleets
    ]
    try:
        await storm(cfg, nodes, links, stats, result, started)
        result.storm_cpu_s = sum(n.cpu_s() for n in nodes) - cpu0
        await asyncio.sleep(cfg.settle_s)
        await steady(cfg, nodes, links, stats, result)
    finally:
        stop.set()
        await asyncio.gather(*runs, return_exceptions=True)


async def storm(
    cfg: Config, nodes: list[Node], links: list[Any], stats: Stats, result: Result, t0: float
) -> None:
    last_print = t0
    while True:
        await asyncio.sleep(0.1)
        now = time.monotonic()
        connected = sum(1 for link in links if link.transport is not None)
        accepted = sum(1 for link in links if link.station.link is Link.ACCEPTED)
        if result.connected_s is None and connected == len(links):
            result.connected_s = now - t0
        if accepted == len(links):
            result.accepted_s = now - t0
            break
        if now - last_print >= 5:
            last_print = now
            say(f"    {now - t0:5.0f} s: {connected:,} connected, {accepted:,} accepted")
        if now - t0 > cfg.storm_timeout_s or not all(n.alive() for n in nodes):
            break
    result.accepted = sum(1 for link in links if link.station.link is Link.ACCEPTED)
    boot = stats.latencies.get("BootNotification")
    result.boots_sent = boot.count if boot is not None else 0


async def steady(
    cfg: Config, nodes: list[Node], links: list[Any], stats: Stats, result: Result
) -> None:
    # The steady state's own figures: start the counters afresh (the stations hold this Stats).
    stats.latencies = {}
    stats.failures.clear()
    stats.call_errors.clear()
    stats.errors.clear()
    frames0 = stats.sent + stats.received
    async with httpx.AsyncClient(timeout=10) as client:
        before = await scrape(client, nodes)
        cpu0, own0 = sum(n.cpu_s() for n in nodes), time.process_time()
        t0 = time.monotonic()
        await asyncio.sleep(cfg.steady_s)
        elapsed = time.monotonic() - t0
        result.client_cpu_share = (time.process_time() - own0) / elapsed
        after = await scrape(client, nodes)
    server_figures(result, before, after)
    result.steady_s = elapsed
    result.rss_after_kib = sum(n.rss_kib() for n in nodes)
    result.cpu_share = (sum(n.cpu_s() for n in nodes) - cpu0) / elapsed
    result.held = sum(
        1 for link in links if link.transport is not None and link.station.link is Link.ACCEPTED
    )
    result.frames_per_s = (stats.sent + stats.received - frames0) / elapsed
    result.latency_ms, result.all_ms = latencies(stats)
    result.calls_per_s = result.all_ms[0] / elapsed
    call_errors = Counter(
        {f"{a}: {code}": n for a, codes in stats.call_errors.items() for code, n in codes.items()}
    )
    result.failures = dict((stats.failures + call_errors).most_common(5))  # CALLERRORs too
    result.errors = dict(stats.errors.most_common(5))


async def scrape(client: httpx.AsyncClient, nodes: list[Node]) -> dict[str, float]:
    """The nodes' metrics, summed over the nodes."""
    total: dict[str, float] = {}
    for node in nodes:
        with contextlib.suppress(httpx.HTTPError):
            for name, value in (await node.metrics(client)).items():
                total[name] = total.get(name, 0.0) + value
    return total


def server_figures(result: Result, before: dict[str, float], after: dict[str, float]) -> None:
    """The nodes' mean answer time per action, and writes per commit, over the steady state."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    prefix = "chargegrid_ocpp_answer_seconds_count"
    for name in after:
        if name.startswith(prefix):
            count = delta(name)
            total = delta(name.replace("_count", "_sum"))
            action = name[len(prefix) :].split('"')[1] if '"' in name else "?"
            if count:
                result.server_mean_ms[action] = total / count * 1000
    commits = delta("chargegrid_store_commits_total")
    if commits:
        result.writes_per_commit = delta("chargegrid_store_writes_total") / commits


# --- reporting -------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def report(cfg: Config, r: Result) -> None:
    say(f"\n  {r.nodes} node{'s' if r.nodes > 1 else ''} on {r.db}, {r.stations:,} stations")
    target = ""
    if r.accepted_s is not None:
        met = "met" if r.accepted_s <= STORM_TARGET_S else "NOT met"
        target = f" (target ≤ {STORM_TARGET_S:.0f} s: {met})"
    say(f"    boot storm: all connected {_s(r.connected_s)}, all Accepted {_s(r.accepted_s)}")
    say(
        f"      {r.accepted:,} Accepted{target}; {r.boots_sent:,} BootNotifications answered "
        f"({r.boots_sent - r.accepted:,} of them Pending); server CPU {r.storm_cpu_s:.1f} s"
    )
    say(f"    steady state, {r.steady_s:.0f} s: {r.held:,} stations held")
    say(
        f"      {r.calls_per_s:,.0f} station CALLs answered per second "
        f"({r.frames_per_s:,.0f} frames/s both ways); nodes use {r.cpu_share:.0%} of core 0"
    )
    count, p50, p99 = r.all_ms
    say(f"      latency, all {count:,} CALLs: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    for action, (n, a50, a99) in r.latency_ms.items():
        mean = r.server_mean_ms.get(action)
        own = "" if mean is None else f"   (node's own mean {mean:6.1f} ms)"
        say(f"        {action:<24} {n:>7,}   p50 {a50:7.1f} ms   p99 {a99:7.1f} ms{own}")
    say(
        f"      writes per commit {r.writes_per_commit:.1f}; the simulator uses "
        f"{r.client_cpu_share:.0%} of core 1"
    )
    say(
        f"    memory: {r.rss_before_kib / 1024:,.0f} MiB before, {r.rss_after_kib / 1024:,.0f} MiB "
        f"after → {r.kib_per_station:.1f} KiB per station held"
    )
    if r.failures or r.errors:
        say(f"    failures: {r.failures}  errors: {r.errors}")


def compare(one: Result, three: Result) -> None:
    say("\n  three nodes / one node (all nodes on core 0: the cost of clustering, not scale-out)")
    rows = [
        ("all Accepted after (s)", three.accepted_s, one.accepted_s),
        ("stations held", three.held, one.held),
        ("station CALLs per second", three.calls_per_s, one.calls_per_s),
        ("core 0 busy", three.cpu_share, one.cpu_share),
        ("p50 latency (ms)", three.all_ms[1], one.all_ms[1]),
        ("p99 latency (ms)", three.all_ms[2], one.all_ms[2]),
        ("memory per station (KiB)", three.kib_per_station, one.kib_per_station),
    ]
    for name, a, b in rows:
        if a is None or b is None:
            shown = [("not reached" if v is None else f"{v:,.2f}") for v in (a, b)]
            say(f"    {name:<26} {shown[0]:>11} {shown[1]:>10}   -")
        else:
            ratio = f"{a / b:.2f}x" if b else "-"
            say(f"    {name:<26} {a:>11,.2f} {b:>10,.2f}   {ratio}")


async def main(cfg: Config) -> int:
    say(f"fleet_scale: {cfg.stations:,} stations ({cfg.version}), {cfg.steady_s:.0f} s steady")
    say(f"  {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {machine_line()}")
    prefix = pinning()
    if prefix:
        say(f"  nodes pinned to core {SERVER_CORE} (taskset), simulator on core {CLIENT_CORE}")
    if (os.cpu_count() or 1) <= 2:
        say(
            "  NOTE: this machine has 2 cores; three nodes share core 0 with each other "
            "(PostgreSQL and NATS float): they measure clustering's overhead, not scale-out"
        )
    if cfg.passwords == "chosen":
        say("  stations have Basic-auth passwords (PBKDF2 at each first connection)")
    elif cfg.passwords == "generated":
        say("  stations have generated Basic-auth passwords (one HMAC at each first connection)")
    no_pg = await pg_reachable(cfg.pg)
    no_nats = nats_reachable(cfg.nats)
    results: dict[str, Result] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="fleet-scale-") as folder:
        tmp = Path(folder)
        for setup in cfg.setups:
            missing = {"PostgreSQL": no_pg} | ({"NATS": no_nats} if setup == "cluster" else {})
            if setup != "sqlite" and any(missing.values()):
                why = "; ".join(f"{k}: {v}" for k, v in missing.items() if v)
                say(f"\n  {setup} SKIPPED: not reachable: {why}")
                continue
            count = 3 if setup == "cluster" else 1
            name = f"chargegrid_fleet_{secrets.token_hex(4)}"
            on_pg = setup != "sqlite"
            if on_pg:
                await pg_admin(cfg.pg, f'CREATE DATABASE "{name}"')
                db = cfg.pg.rsplit("/", 1)[0] + "/" + name
            else:
                db = f"sqlite:///{tmp / (name + '.db')}"
            try:
                await asyncio.to_thread(upgrade, db)
                await register(db, Scenario(stations=cfg.stations, prefix=PREFIX), cfg.passwords)
                say(f"\n  {count} node(s) on {'PostgreSQL' if on_pg else 'SQLite'}: storm...")
                result = await run_setup(cfg, count, db, prefix, tmp)
            finally:
                if on_pg:
                    await pg_admin(cfg.pg, f'DROP DATABASE "{name}" WITH (FORCE)')
            results[setup] = result
            report(cfg, result)
            failed |= result.accepted < cfg.stations or bool(result.failures)
    if "pg" in results and "cluster" in results:
        compare(results["pg"], results["cluster"])
    return 1 if failed else 0


def run() -> None:
    cfg = parse_args()
    raise_nofile()
    coro = main(cfg)
    try:
        code = uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
    except BenchError as exc:
        say(f"fleet_scale: {exc}")
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    run()
