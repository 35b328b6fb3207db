"""OCPP 1.6J load benchmark: chargegrid against a baseline central system, in one run.

    python benchmarks/ocpp_throughput.py [--stations N] [--duration S] [--rate R] [--quick]

Each server runs as a subprocess pinned to CPU core 0 (``taskset -c 0``); this process is the
load generator (picows client, msgspec, uvloop) pinned to core 1. The servers run one after the
other, never together:

* chargegrid: ``python -m chargegrid.entrypoints.cli serve`` on a fresh SQLite file, validation
  and persistence on (they always are), ``--unknown-stations accept``, pings off, log level
  warning;
* the baseline: ``benchmarks/baseline_csms.py``, the ``ocpp`` package's ChargePoint on
  ``websockets``, transactions in a dict, no database: what a Python user would write instead;
* the ceiling (throughput phase only; ``--no-ceiling`` skips it): ``benchmarks/ceiling_server.py``,
  picows + msgspec decoding and validating each CALL and answering it, nothing else: the rate
  no server on this stack can beat.

Phases, for each server:

1. throughput: N stations (default 200) connect with subprotocol ocpp1.6, send BootNotification
   and StatusNotification, then loop a charging-session mix (see ``CYCLE``), each sending its
   next CALL as soon as the previous answer arrives (closed loop). Answers per second and the
   send-to-answer latency of every message are measured over ``--duration`` seconds after a
   warm-up.
2. latency at a realistic load: 1,000 stations, each sending one message every 1/R seconds
   (default R = 0.1: every 10 s), the sends spread evenly (open loop).
3. memory: a freshly started server, RSS (/proc/PID/status VmRSS) before and after K idle,
   booted stations (default 2,000) connect; KiB per station.

Stations in phases 1 and 2 start the mix at staggered steps (a station that starts inside a
charging session starts its transaction first), so every kind of message is in the load at once.

Besides rates and latencies it reports the server's CPU time per answered message (from
/proc/PID/stat): unlike rates, it hardly moves when other processes share the machine, which
the script measures too (/proc/stat) and reports as noise. ``--wait-quiet S`` waits for idle
cores first; ``--profile DIR`` samples chargegrid with py-spy during phase 1 and summarises it.

The exit status is 1 if a server answered the (valid) load with a CALLERROR, refused a boot,
dropped a connection or failed to accept one; timings are reported, never asserted.
``--quick`` is the CI smoke run (about 20 s, a few stations).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import picows

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is not built for Windows
    uvloop = None  # type: ignore[assignment]

HERE = Path(__file__).resolve().parent
SERVER_CORE = 0
CLIENT_CORE = 1
ID_TAG = "BENCHTAG0001"

# One charging session per cycle: the order a real charge point sends these in.
CYCLE: tuple[tuple[str, str], ...] = (
    ("Heartbeat", ""),
    ("StatusNotification", "Preparing"),
    ("Authorize", ""),
    ("StartTransaction", ""),
    ("StatusNotification", "Charging"),
    ("MeterValues", ""),
    ("MeterValues", ""),
    ("MeterValues", ""),
    ("MeterValues", ""),
    ("StopTransaction", ""),
    ("StatusNotification", "Available"),
)

NOISY = 0.05  # other processes using more of a core than this make a measurement noisy
TARGET_RATIO = 20.0
TARGET_P99_MS = 50.0
TARGET_KIB = 50.0


# --- configuration --------------------------------------------------------------------------


@dataclass
class Config:
    stations: int
    duration: float
    warmup: float
    rate: float
    latency_stations: int
    latency_duration: float
    idle_stations: int
    baseline_latency: bool
    profile: Path | None
    wait_quiet: float
    quick: bool
    ceiling: bool
    argv: list[str]


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(
        description="OCPP 1.6J throughput, latency and memory: chargegrid against a baseline"
    )
    p.add_argument("--stations", type=int, help="stations in the throughput phase (default 200)")
    p.add_argument("--duration", type=float, help="seconds measured in the throughput phase (15)")
    p.add_argument(
        "--rate",
        type=float,
        help="messages per second per station in the latency phase (default 0.1: one every 10 s)",
    )
    p.add_argument("--latency-stations", type=int, help="stations in the latency phase (1000)")
    p.add_argument("--latency-duration", type=float, help="seconds of the latency phase (30)")
    p.add_argument("--idle-stations", type=int, help="idle stations in the memory phase (2000)")
    p.add_argument(
        "--no-baseline-latency",
        dest="baseline_latency",
        action="store_false",
        help="skip the latency phase for the baseline",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record chargegrid with py-spy (every thread, 250 Hz) during the throughput "
        "phase, raw stacks to DIR, and print a summary",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S seconds for both cores to be idle before starting (default 0)",
    )
    p.add_argument(
        "--no-ceiling",
        dest="ceiling",
        action="store_false",
        help="skip the throughput phase of benchmarks/ceiling_server.py (validation only)",
    )
    p.add_argument("--quick", action="store_true", help="CI smoke run: about 20 s, few stations")
    a = p.parse_args(argv)
    quick = a.quick

    def pick(value: Any, default: Any, quick_default: Any) -> Any:
        return value if value is not None else (quick_default if quick else default)

    return Config(
        stations=pick(a.stations, 200, 20),
        duration=pick(a.duration, 15.0, 2.0),
        warmup=1.0 if quick else 3.0,
        rate=pick(a.rate, 0.1, 2.0),
        latency_stations=pick(a.latency_stations, 1000, 50),
        latency_duration=pick(a.latency_duration, 30.0, 2.0),
        idle_stations=pick(a.idle_stations, 2000, 100),
        baseline_latency=a.baseline_latency,
        profile=a.profile,
        wait_quiet=a.wait_quiet,
        quick=quick,
        ceiling=a.ceiling,
        argv=list(sys.argv if argv is None else ["ocpp_throughput.py", *argv]),
    )


# --- the machine ----------------------------------------------------------------------------


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_line() -> str:
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB"
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


@dataclass
class Pinning:
    server_prefix: list[str]
    note: str


def set_up_pinning() -> Pinning:
    """Pin this process to CLIENT_CORE and prefix server commands with taskset to SERVER_CORE."""
    try:
        cores = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return Pinning([], "not pinned (no sched_setaffinity on this OS)")
    if not {SERVER_CORE, CLIENT_CORE} <= cores:
        return Pinning([], f"not pinned (needs cores 0 and 1, this process may use {cores})")
    os.sched_setaffinity(0, {CLIENT_CORE})
    taskset = shutil.which("taskset")
    if taskset:
        return Pinning(
            [taskset, "-c", str(SERVER_CORE)],
            f"servers pinned with `taskset -c {SERVER_CORE}`, load generator on core "
            f"{CLIENT_CORE} (sched_setaffinity)",
        )
    return Pinning(
        [],
        f"load generator on core {CLIENT_CORE}; servers NOT pinned (no taskset), "
        "so they may use both cores",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_preexec() -> None:  # runs in the child between fork and exec
    raise_nofile()


class Server:
    """A server subprocess: start, wait for its port, read its RSS and CPU time, stop."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._tick = os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_server_preexec,  # only raises RLIMIT_NOFILE
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
            )
        finally:
            log.close()
        LIVE.append(self)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait until the port accepts TCP connections; return the seconds it took."""
        assert self.proc is not None
        t0 = time.perf_counter()
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode}\n{self.tail()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.perf_counter() - t0 > timeout:
                    raise BenchError(f"{self.name} did not open port {self.port}") from None
                await asyncio.sleep(0.05)
            else:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return time.perf_counter() - t0

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError("no VmRSS in /proc status")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the whole process (all its threads)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick

    def thread_cpu_s(self) -> dict[int, float]:
        """CPU seconds per thread (by thread id; the main thread's id is the pid)."""
        out: dict[int, float] = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                out[int(task.name)] = (int(fields[11]) + int(fields[12])) / self._tick
        return out

    async def wait_idle(self, limit: float = 15.0) -> None:
        """Wait until the server has (nearly) stopped using CPU, e.g. after disconnects."""
        deadline = time.perf_counter() + limit
        quiet = 0
        last = self.cpu_s()
        while time.perf_counter() < deadline and quiet < 2:
            await asyncio.sleep(0.25)
            now = self.cpu_s()
            quiet = quiet + 1 if now - last < 0.025 else 0
            last = now

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])

    def log_lines(self) -> int:
        try:
            return len(self.log_path.read_text(errors="replace").splitlines())
        except OSError:
            return 0

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.proc = None
        if self in LIVE:
            LIVE.remove(self)


LIVE: list[Server] = []


def stop_all() -> None:
    for server in list(LIVE):
        with contextlib.suppress(Exception):
            server.stop()


def core_busy_s() -> dict[int, float]:
    """Busy (not idle, not iowait) CPU seconds per core since boot, from /proc/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name.startswith("cpu") and name[3:].isdigit():
                jiffies = [int(v) for v in values[:8]]
                out[int(name[3:])] = (sum(jiffies) - jiffies[3] - jiffies[4]) / tick
    return out


def machine_busy(seconds: float = 1.0) -> dict[int, float]:
    """Share of each core that was busy over the next ``seconds``."""
    before = core_busy_s()
    time.sleep(seconds)
    after = core_busy_s()
    return {core: (after[core] - before.get(core, 0.0)) / seconds for core in after}


def wait_quiet(limit: float) -> dict[int, float]:
    """Wait (at most ``limit`` s) until cores 0 and 1 are both nearly idle; return their load."""
    deadline = time.monotonic() + limit
    while True:
        busy = machine_busy(1.0)
        quiet = all(busy.get(c, 0.0) < 0.1 for c in (SERVER_CORE, CLIENT_CORE))
        if quiet or time.monotonic() >= deadline:
            return busy
        time.sleep(1.0)


class BenchError(Exception):
    pass


# --- the load generator ---------------------------------------------------------------------


_second: list[Any] = [-1, b""]  # the last second formatted, and its text


def timestamp() -> bytes:
    """Now in UTC as RFC 3339 with milliseconds, cheaply (formatted once a second)."""
    t = time.time()
    sec = int(t)
    if sec != _second[0]:
        _second[:] = [sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)).encode()]
    return b"%s.%03dZ" % (_second[1], int((t - sec) * 1000))


def now_iso() -> str:
    return timestamp().decode()


def sampled_values(wh: int, amps: float) -> list[dict[str, str]]:
    """A typical AC meter sample: energy register, power, current and voltage per phase."""
    volts = ("230.1", "229.8", "231.0")
    power = round(sum(amps * float(v) for v in volts))
    values = [
        {
            "value": str(wh),
            "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        },
        {
            "value": str(power),
            "context": "Sample.Periodic",
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unit": "W",
        },
    ]
    for phase in ("L1", "L2", "L3"):
        values.append(
            {
                "value": f"{amps:.1f}",
                "context": "Sample.Periodic",
                "measurand": "Current.Import",
                "phase": phase,
                "location": "Outlet",
                "unit": "A",
            }
        )
    for phase, v in zip(("L1-N", "L2-N", "L3-N"), volts, strict=True):
        values.append(
            {
                "value": v,
                "context": "Sample.Periodic",
                "measurand": "Voltage",
                "phase": phase,
                "location": "Outlet",
                "unit": "V",
            }
        )
    return values


# Frames of the session mix, rendered with %: the load generator must cost little per message.
_SAMPLED = msgspec.json.encode(sampled_values(123456789, 16.0)).replace(b"123456789", b"%d")
FRAMES = {
    "Heartbeat": b'[2,"%d","Heartbeat",{}]',
    "StatusNotification": b'[2,"%d","StatusNotification",{"connectorId":1,"errorCode":"NoError",'
    b'"status":"%s","timestamp":"%s"}]',
    "Authorize": b'[2,"%d","Authorize",{"idTag":"' + ID_TAG.encode() + b'"}]',
    "StartTransaction": b'[2,"%d","StartTransaction",{"connectorId":1,"idTag":"'
    + ID_TAG.encode()
    + b'","meterStart":%d,"timestamp":"%s"}]',
    "MeterValues": b'[2,"%d","MeterValues",{"connectorId":1,"transactionId":%d,'
    b'"meterValue":[{"timestamp":"%s","sampledValue":' + _SAMPLED + b"}]}]",
    "StopTransaction": b'[2,"%d","StopTransaction",{"meterStop":%d,"timestamp":"%s",'
    b'"transactionId":%d,"idTag":"' + ID_TAG.encode() + b'","reason":"Local"}]',
}
_STATUS = tuple(status.encode() for _, status in CYCLE)
_ACTIONS = [action for action, _ in CYCLE]
_START = _ACTIONS.index("StartTransaction")
_STOP = _ACTIONS.index("StopTransaction")


def render(action: str, seq: int, status: bytes, wh: int, tx_id: int) -> bytes:
    """The CALL frame for ``action``; the arguments it does not use are ignored."""
    frame = FRAMES[action]
    if action == "StatusNotification":
        return frame % (seq, status, timestamp())
    if action == "StartTransaction":
        return frame % (seq, wh, timestamp())
    if action == "MeterValues":
        return frame % (seq, tx_id, timestamp(), wh)
    if action == "StopTransaction":
        return frame % (seq, wh, timestamp(), tx_id)
    return frame % seq


def _check_frames() -> None:
    """Each rendered frame is a JSON CALL: a typo in FRAMES would show as CALLERRORs."""
    for action, status in CYCLE:
        msg = msgspec.json.decode(render(action, 7, status.encode() or b"Available", 1000, 3))
        assert msg[:3] == [2, "7", action] and isinstance(msg[3], dict), msg


@dataclass
class Stats:
    """What one phase against one server measured."""

    latencies: list[float] = field(default_factory=list)
    by_action: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answers: int = 0
    window: float = 0.0
    server_cpu: float = 0.0  # share of one core over the window
    server_main_cpu: float = 0.0  # the same, of the server's main (event loop) thread
    server_threads: int = 0  # threads that used CPU in the window, main included
    client_cpu: float = 0.0
    other_server_core: float = 0.0  # share of core 0 used by other processes: noise
    other_client_core: float = 0.0  # the same for core 1
    overdue: int = 0  # open loop: a send was due while the previous answer was outstanding

    @property
    def rate(self) -> float:
        return self.answers / self.window if self.window else 0.0

    @property
    def cpu_per_msg_us(self) -> float:
        """Server CPU time per answered message: robust against other load on the machine."""
        return self.server_cpu / self.rate * 1e6 if self.rate else float("nan")

    def pct(self, q: float, values: list[float] | None = None) -> float:
        data = self.latencies if values is None else values
        if not data:
            return float("nan")
        data = sorted(data)
        return data[min(len(data) - 1, int(q * len(data)))] * 1000.0


class Station(picows.WSListener):  # type: ignore[misc]
    """One simulated charge point: sends a CALL, waits for its answer, then sends the next."""

    def __init__(self, gen: LoadGenerator, station_id: str) -> None:
        super().__init__()
        self.gen = gen
        self.station_id = station_id
        self.transport: Any = None
        self.seq = 0
        self.step = 0
        self.wh = 1000
        self.tx_id = 0
        self.pending_action = ""
        self.sent_at = 0.0
        self.waiter: asyncio.Future[list[Any]] | None = None
        self.looping = False
        self.closing = False
        self.gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # picows callbacks

    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        if frame.msg_type != picows.WSMsgType.TEXT:
            if frame.msg_type == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        now = time.perf_counter()
        self.gen.answered(self, msgspec.json.decode(frame.get_payload_as_bytes()), now)

    def on_ws_disconnected(self, transport: Any) -> None:
        if not self.closing:
            self.gen.dropped += 1
        if not self.gone.done():
            self.gone.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(BenchError(f"{self.station_id} disconnected"))

    # sending

    def send(self, action: str, payload: dict[str, Any]) -> None:
        self.seq += 1
        frame = msgspec.json.encode([2, str(self.seq), action, payload])
        self.pending_action = action
        self.sent_at = time.perf_counter()
        self.transport.send(picows.WSMsgType.TEXT, frame)

    async def request(self, action: str, payload: dict[str, Any]) -> list[Any]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.send(action, payload)
        try:
            return await asyncio.wait_for(self.waiter, 60)
        finally:
            self.waiter = None

    def send_next(self) -> None:
        """Send the next CALL of the session mix (``CYCLE``)."""
        step = self.step
        action = CYCLE[step][0]
        self.step = (step + 1) % len(CYCLE)
        if action == "MeterValues":
            self.wh += 37
        elif action == "StopTransaction":
            self.wh += 11
        self.seq += 1
        frame = render(action, self.seq, _STATUS[step], self.wh, self.tx_id)
        self.pending_action = action
        self.sent_at = time.perf_counter()
        self.transport.send(picows.WSMsgType.TEXT, frame)

    def close(self) -> None:
        self.closing = True
        self.looping = False
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.send_close(picows.WSCloseCode.OK)
                self.transport.disconnect()


class LoadGenerator:
    """Drives stations against one server and records what comes back."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url_base = f"ws://127.0.0.1:{server.port}/ocpp/"
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.refused_boots = 0
        self.failed_connects = 0
        self.connect_errors: Counter[str] = Counter()
        self.dropped = 0
        self.recording = False
        self.stats = Stats()
        self.outstanding = 0
        self._drained: asyncio.Event | None = None

    # answers

    def answered(self, station: Station, msg: list[Any], now: float) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and self._drained is not None:
            self._drained.set()
        action = station.pending_action
        station.pending_action = ""
        if self.recording:
            latency = now - station.sent_at
            self.stats.latencies.append(latency)
            self.stats.by_action[action].append(latency)
            self.stats.answers += 1
        if msg[0] == 4:
            self.errors[f"{action}: {msg[2]}"] += 1
            if len(self.error_samples) < 2:
                self.error_samples.append(f"{station.station_id} {action}: {msg[2:]}"[:200])
        elif action == "StartTransaction":
            station.tx_id = msg[2]["transactionId"]
        elif action == "BootNotification" and msg[2].get("status") != "Accepted":
            self.refused_boots += 1
        if station.waiter is not None:
            if not station.waiter.done():
                station.waiter.set_result(msg)
        elif station.looping:
            self.outstanding += 1
            station.send_next()

    # connections

    async def connect(self, count: int, prefix: str, concurrency: int = 50) -> list[Station]:
        sem = asyncio.Semaphore(concurrency)
        stations: list[Station | None] = [None] * count

        async def one(i: int) -> None:
            station_id = f"{prefix}{i:05d}"

            def factory() -> Station:
                return Station(self, station_id)

            async with sem:
                try:
                    _, listener = await picows.ws_connect(
                        factory,
                        self.url_base + station_id,
                        extra_headers={"Sec-WebSocket-Protocol": "ocpp1.6"},
                        websocket_handshake_timeout=30,
                    )
                except Exception as exc:
                    self.failed_connects += 1
                    self.connect_errors[type(exc).__name__ + ": " + str(exc)[:80]] += 1
                    return
                stations[i] = listener

        await asyncio.gather(*(one(i) for i in range(count)))
        return [s for s in stations if s is not None]

    async def boot(self, stations: list[Station], *, stagger: bool = False) -> None:
        """BootNotification then StatusNotification (connector 1 Available) from each station.

        ``stagger``: station i will start the session mix at step i (mod the mix's length), so
        that every kind of message is sent from the start; a station that starts inside a
        charging session starts its transaction now.
        """

        async def one(i: int, st: Station) -> None:
            try:
                self.outstanding += 1
                await st.request(
                    "BootNotification",
                    {
                        "chargePointVendor": "BenchVendor",
                        "chargePointModel": "AC22-Bench",
                        "chargePointSerialNumber": st.station_id[-25:],
                        "firmwareVersion": "1.4.2",
                    },
                )
                self.outstanding += 1
                await st.request(
                    "StatusNotification",
                    {
                        "connectorId": 1,
                        "errorCode": "NoError",
                        "status": "Available",
                        "timestamp": now_iso(),
                    },
                )
                if stagger:
                    st.step = i % len(CYCLE)
                    if _START < st.step <= _STOP:
                        self.outstanding += 1
                        await st.request(
                            "StartTransaction",
                            {
                                "connectorId": 1,
                                "idTag": ID_TAG,
                                "meterStart": st.wh,
                                "timestamp": now_iso(),
                            },
                        )
            except (BenchError, TimeoutError) as exc:
                self.errors[f"boot: {type(exc).__name__}"] += 1

        await asyncio.gather(*(one(i, st) for i, st in enumerate(stations)))

    async def close(self, stations: list[Station]) -> None:
        for st in stations:
            st.close()
        gone = [st.gone for st in stations]
        if gone:
            await asyncio.wait(gone, timeout=15)

    async def drain(self, limit: float = 15.0) -> None:
        """Wait (at most ``limit`` s) for the answers to every CALL sent so far."""
        if self.outstanding > 0:
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), limit)
            self._drained = None

    # phases

    async def measure(self, seconds: float) -> Stats:
        """Record answers for ``seconds``, with the server's and our CPU use over that window."""
        self.stats = Stats()
        cpu0 = self.server.cpu_s()
        threads0 = self.server.thread_cpu_s()
        cores0 = core_busy_s()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        self.recording = True
        await asyncio.sleep(seconds)
        self.recording = False
        t1 = time.perf_counter()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cores1 = core_busy_s()
        stats = self.stats
        stats.window = t1 - t0
        stats.server_cpu = (self.server.cpu_s() - cpu0) / stats.window
        threads1 = self.server.thread_cpu_s()
        pid = self.server.pid
        stats.server_main_cpu = (threads1.get(pid, 0.0) - threads0.get(pid, 0.0)) / stats.window
        stats.server_threads = sum(
            1 for tid, cpu in threads1.items() if cpu > threads0.get(tid, 0.0)
        )
        stats.client_cpu = (
            ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime
        ) / stats.window

        def busy(core: int) -> float:
            return (cores1.get(core, 0.0) - cores0.get(core, 0.0)) / stats.window

        stats.other_server_core = max(0.0, busy(SERVER_CORE) - stats.server_cpu)
        stats.other_client_core = max(0.0, busy(CLIENT_CORE) - stats.client_cpu)
        return stats

    async def closed_loop(
        self, stations: list[Station], warmup: float, seconds: float, on_start: Callable[[], Any]
    ) -> Stats:
        for st in stations:
            st.looping = True
            self.outstanding += 1
            st.send_next()
        await asyncio.sleep(warmup)
        on_start()
        stats = await self.measure(seconds)
        for st in stations:
            st.looping = False
        await self.drain()
        return stats

    async def open_loop(self, stations: list[Station], rate: float, seconds: float) -> Stats:
        """Each station sends one message every 1/rate s; the first sends are spread evenly."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / rate
        start = loop.time() + 0.2
        handles: dict[int, asyncio.TimerHandle] = {}
        overdue = 0

        def tick(i: int, st: Station, k: int) -> None:
            nonlocal overdue
            if st.pending_action:
                overdue += 1
            else:
                self.outstanding += 1
                st.send_next()
            at = start + (i / len(stations) + k + 1) * interval
            handles[i] = loop.call_at(at, tick, i, st, k + 1)

        for i, st in enumerate(stations):
            handles[i] = loop.call_at(start + i / len(stations) * interval, tick, i, st, 0)
        await asyncio.sleep(0.2)
        stats = await self.measure(seconds)
        for handle in handles.values():
            handle.cancel()
        stats.overdue = overdue
        await self.drain()
        return stats


# --- running it -----------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    startup_s: float = 0.0
    throughput: Stats | None = None
    latency: Stats | None = None
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    idle_connected: int = 0
    failures: list[str] = field(default_factory=list)
    log_lines: int = 0

    @property
    def kib_per_station(self) -> float:
        if not self.idle_connected:
            return float("nan")
        return (self.rss_after_kib - self.rss_before_kib) / self.idle_connected


def say(text: str = "") -> None:
    print(text, flush=True)


def noise_note(stats: Stats) -> str:
    note = (
        f"    other processes used {stats.other_server_core:.0%} of core {SERVER_CORE} and "
        f"{stats.other_client_core:.0%} of core {CLIENT_CORE} meanwhile"
    )
    if max(stats.other_server_core, stats.other_client_core) > NOISY:
        note += ": the machine was not quiet, these figures are noisy"
    if stats.client_cpu + stats.other_client_core > 0.85:
        note += (
            f"\n    core {CLIENT_CORE} was nearly saturated (load generator and others): "
            "the server may be faster than measured"
        )
    return note


def check(gen: LoadGenerator, result: Result, phase: str, expected: int, got: int) -> None:
    if got < expected:
        result.failures.append(f"{phase}: {expected - got} of {expected} stations did not connect")
        for err, n in gen.connect_errors.most_common(3):
            result.failures.append(f"  {n} x {err}")
    if gen.errors:
        for what, n in gen.errors.most_common():
            result.failures.append(f"{phase}: {n} x CALLERROR/failure {what}")
        result.failures.extend(f"    e.g. {s}" for s in gen.error_samples)
    if gen.refused_boots:
        result.failures.append(f"{phase}: {gen.refused_boots} BootNotification not Accepted")
    if gen.dropped:
        result.failures.append(f"{phase}: server closed {gen.dropped} connections")


async def run_server(
    name: str,
    make: Callable[[int], Server],
    cfg: Config,
    pinning: Pinning,
    *,
    throughput_only: bool = False,
) -> Result:
    result = Result(name)
    say(f"\n== {name} ==")

    # 1 + 2: throughput, then latency at a realistic load, on one server process.
    server = make(free_port())
    server.start()
    try:
        result.startup_s = await server.wait_ready()
        say(f"  started in {result.startup_s:.1f} s (pid {server.pid}, port {server.port})")

        gen = LoadGenerator(server)
        stations = await gen.connect(cfg.stations, "tp-")
        await gen.boot(stations, stagger=True)
        say(f"  throughput: {len(stations)} stations connected and booted; closed loop")
        profiler: list[subprocess.Popen[bytes]] = []

        def start_profile() -> None:
            if cfg.profile is not None and name == "chargegrid":
                profiler.append(start_py_spy(server.pid, cfg.profile, cfg.duration, pinning))

        stats = await gen.closed_loop(stations, cfg.warmup, cfg.duration, start_profile)
        result.throughput = stats
        say(
            f"  throughput: {stats.rate:,.0f} msg/s, p50 {stats.pct(0.5):.1f} ms, "
            f"p99 {stats.pct(0.99):.1f} ms, server CPU {stats.server_cpu:.0%} "
            f"= {stats.cpu_per_msg_us:,.0f} us per message (main thread "
            f"{stats.server_main_cpu:.0%}, {stats.server_threads} threads busy), "
            f"generator CPU {stats.client_cpu:.0%}"
        )
        say(noise_note(stats))
        await gen.close(stations)
        check(gen, result, "throughput", cfg.stations, len(stations))
        for proc in profiler:
            proc.wait(cfg.duration + 30)
        await server.wait_idle()

        if throughput_only:
            return result
        if name == "chargegrid" or cfg.baseline_latency:
            gen = LoadGenerator(server)
            t0 = time.perf_counter()
            stations = await gen.connect(cfg.latency_stations, "lat-")
            await gen.boot(stations, stagger=True)
            say(
                f"  latency: {len(stations)} stations connected and booted in "
                f"{time.perf_counter() - t0:.1f} s; each sends every {1 / cfg.rate:g} s"
            )
            await server.wait_idle(5)
            stats = await gen.open_loop(stations, cfg.rate, cfg.latency_duration)
            result.latency = stats
            say(
                f"  latency: {stats.answers} answers, p50 {stats.pct(0.5):.1f} ms, "
                f"p99 {stats.pct(0.99):.1f} ms, max {stats.pct(1.0):.1f} ms, "
                f"server CPU {stats.server_cpu:.0%} = {stats.cpu_per_msg_us:,.0f} us per message, "
                f"overdue sends {stats.overdue}"
            )
            say(noise_note(stats))
            await gen.close(stations)
            check(gen, result, "latency", cfg.latency_stations, len(stations))
    finally:
        result.log_lines += server.log_lines()
        log_tail = server.tail(10)
        server.stop()
    if result.log_lines:
        say(f"  server log ({result.log_lines} lines at level warning+), last lines:\n{log_tail}")

    # 3: memory per idle station, on a fresh process so freed memory from the load is not reused.
    server = make(free_port())
    server.start()
    try:
        await server.wait_ready()
        gen = LoadGenerator(server)
        warm = await gen.connect(10, "warm-")  # first-use allocations are not per station
        await gen.boot(warm)
        await gen.close(warm)
        await server.wait_idle(5)
        result.rss_before_kib = server.rss_kib()
        stations = await gen.connect(cfg.idle_stations, "idle-")
        await gen.boot(stations)
        await server.wait_idle(10)
        result.rss_after_kib = server.rss_kib()
        result.idle_connected = len(stations)
        say(
            f"  memory: RSS {result.rss_before_kib / 1024:.1f} MiB -> "
            f"{result.rss_after_kib / 1024:.1f} MiB with {len(stations)} idle stations: "
            f"{result.kib_per_station:.1f} KiB per station"
        )
        await gen.close(stations)
        check(gen, result, "memory", cfg.idle_stations + 10, len(stations) + len(warm))
    finally:
        server.stop()
    return result


def start_py_spy(pid: int, out_dir: Path, seconds: float, pinning: Pinning) -> Any:
    """py-spy samples the threads holding the GIL: where the server's Python time goes."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "chargegrid-throughput.txt"
    prefix = ["taskset", "-c", str(CLIENT_CORE)] if pinning.server_prefix else []
    argv = [
        *prefix,
        exe,
        "record",
        "--threads",
        "--nonblocking",
        "-r",
        "250",
        "--format",
        "raw",
        "-o",
        str(out),
    ]
    argv += ["-d", str(max(1, int(seconds))), "-p", str(pid)]
    say(f"  profiling: {shlex.join(argv)}")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


LAYERS = (
    ("chargegrid/adapters/storage/", "chargegrid storage"),
    ("chargegrid/adapters/transport/", "chargegrid transport"),
    ("chargegrid/protocols/", "chargegrid protocols"),
    ("chargegrid/service/", "chargegrid service"),
    ("chargegrid/domain/", "chargegrid domain"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("aiosqlite/", "aiosqlite"),
    ("structlog/", "structlog"),
    ("logging/", "logging"),
    ("asyncio/", "asyncio"),
    ("uvloop/", "uvloop"),
    ("threading.py", "threading"),
)


def _frame(text: str) -> tuple[str, str]:
    """``func (path:line)`` -> (``func (file)``, layer)."""
    func, _, where = text.partition(" (")
    path = where.rsplit(":", 1)[0]
    layer = next((name for key, name in LAYERS if key in path), "other")
    return f"{func} ({path.rsplit('/', 1)[-1]})", layer


def summarize_profile(path: Path, top: int = 15) -> None:
    """Shares per function and per layer from py-spy's raw (collapsed stack) output."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        say(f"\nprofile: cannot read {path}: {exc}")
        return
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    own_layer: Counter[str] = Counter()
    storage = 0  # samples with the storage stack (ours, SQLAlchemy, aiosqlite) anywhere
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        own[frames[-1][0]] += n
        own_layer[frames[-1][1]] += n
        for name in {f for f, _ in frames}:
            incl[name] += n
        layers = {layer for _, layer in frames}
        if layers & {"chargegrid storage", "SQLAlchemy", "aiosqlite"}:
            storage += n
    if not total:
        say(f"\nprofile: no samples in {path}")
        return
    say(f"\nprofile of chargegrid, throughput phase ({total} samples holding the GIL, {path}):")
    say(f"  storage stack (chargegrid storage + SQLAlchemy + aiosqlite): {storage / total:.1%}")
    say("  self time by layer:")
    for name, n in own_layer.most_common():
        say(f"    {n / total:6.1%}  {name}")
    say("  self time by function:")
    for name, n in own.most_common(top):
        say(f"    {n / total:6.1%}  {name}")
    say("  inclusive time by function:")
    for name, n in incl.most_common(top + 10):
        say(f"    {n / total:6.1%}  {name}")


# --- report ---------------------------------------------------------------------------------


def ms(v: float) -> str:
    return f"{v:.1f} ms" if v == v else "-"  # NaN check


def ratio(a: float, b: float) -> str:
    if not (a == a and b == b) or not a or not b:  # NaN or zero
        return "-"
    return f"{a / b:.1f}x"


@dataclass
class Row:
    label: str
    chargegrid: str
    baseline: str
    advantage: str = ""
    target: str = ""  # shown in the Markdown table
    markdown: bool = True


def report(cfg: Config, results: dict[str, Result], pinning: Pinning, started: str) -> None:
    cg, base = results["chargegrid"], results["baseline"]
    cg_tp, b_tp = cg.throughput or Stats(), base.throughput or Stats()
    cg_lat, b_lat = cg.latency or Stats(), base.latency or Stats()
    lat_label = f"{cfg.latency_stations} stations, 1 msg / {1 / cfg.rate:g} s each"

    tp_ratio = cg_tp.rate / b_tp.rate if b_tp.rate else float("nan")
    p99 = cg_lat.pct(0.99)
    kib = cg.kib_per_station

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    targets = [
        (f"throughput >= {TARGET_RATIO:g}x baseline", f"{tp_ratio:.1f}x", met(tp_ratio >= 20)),
        (f"p99 < {TARGET_P99_MS:g} ms ({lat_label})", ms(p99), met(p99 < TARGET_P99_MS)),
        (f"< {TARGET_KIB:g} KiB per idle station", f"{kib:.1f} KiB", met(kib < TARGET_KIB)),
    ]

    rows = [
        Row(
            f"throughput, {cfg.stations} stations, closed loop",
            f"{cg_tp.rate:,.0f} msg/s",
            f"{b_tp.rate:,.0f} msg/s",
            ratio(cg_tp.rate, b_tp.rate),
            f">= {TARGET_RATIO:g}x baseline: {targets[0][2]}",
        ),
    ]
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        c, b = cg_tp.pct(q), b_tp.pct(q)
        rows.append(Row(f"  {label} latency at that load", ms(c), ms(b), ratio(b, c)))
    rows += [
        Row(
            "  server CPU time per message, closed loop",
            f"{cg_tp.cpu_per_msg_us:,.0f} us",
            f"{b_tp.cpu_per_msg_us:,.0f} us",
            ratio(b_tp.cpu_per_msg_us, cg_tp.cpu_per_msg_us),
        ),
        Row(
            "  server CPU, core 0",
            f"{cg_tp.server_cpu:.0%}",
            f"{b_tp.server_cpu:.0%}",
            markdown=False,
        ),
        Row(
            "    of which main thread",
            f"{cg_tp.server_main_cpu:.0%}",
            f"{b_tp.server_main_cpu:.0%}",
            markdown=False,
        ),
        Row(
            "  load generator CPU, core 1",
            f"{cg_tp.client_cpu:.0%}",
            f"{b_tp.client_cpu:.0%}",
            markdown=False,
        ),
    ]
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        c, b = cg_lat.pct(q), b_lat.pct(q)
        target = f"< {TARGET_P99_MS:g} ms: {targets[1][2]}" if q == 0.99 else ""
        rows.append(Row(f"{label} latency, {lat_label}", ms(c), ms(b), ratio(b, c), target))
    rows.append(
        Row(
            "  server CPU time per message, open loop",
            f"{cg_lat.cpu_per_msg_us:,.0f} us",
            f"{b_lat.cpu_per_msg_us:,.0f} us",
            ratio(b_lat.cpu_per_msg_us, cg_lat.cpu_per_msg_us),
        )
    )
    rows += [
        Row(
            f"memory per idle station ({cfg.idle_stations} booted)",
            f"{cg.kib_per_station:.1f} KiB",
            f"{base.kib_per_station:.1f} KiB",
            ratio(base.kib_per_station, cg.kib_per_station),
            f"< {TARGET_KIB:g} KiB: {targets[2][2]}",
        ),
        Row("startup (port open)", f"{cg.startup_s:.1f} s", f"{base.startup_s:.1f} s"),
    ]

    header = Row("", "chargegrid", "baseline", "chargegrid advantage")
    table = [(r.label, r.chargegrid, r.baseline, r.advantage) for r in [header, *rows]]
    widths = [max(len(t[i]) for t in table) for i in range(4)]
    say("\n== results ==")
    for t in table:
        cells = [t[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(t[1:], widths[1:], strict=True)
        ]
        say("  " + "  ".join(cells))
    say("  (advantage: chargegrid/baseline for throughput, baseline/chargegrid for latency and")
    say("  memory: above 1x chargegrid is better)")

    say("\nper action, throughput phase (p50 / p99 ms, answers):")
    for action in sorted(set(cg_tp.by_action) | set(b_tp.by_action)):
        c, b = cg_tp.by_action.get(action, []), b_tp.by_action.get(action, [])
        say(
            f"  {action:20} chargegrid {cg_tp.pct(0.5, c):7.1f} / {cg_tp.pct(0.99, c):7.1f} "
            f"({len(c):6})   baseline {b_tp.pct(0.5, b):7.1f} / {b_tp.pct(0.99, b):7.1f} "
            f"({len(b):6})"
        )

    measured = [st for r in (cg, base) for st in (r.throughput, r.latency) if st is not None]
    worst_server = max((st.other_server_core for st in measured), default=0.0)
    worst_client = max((st.other_client_core for st in measured), default=0.0)
    noise = (
        f"other processes used up to {worst_server:.0%} of core {SERVER_CORE} (servers) and "
        f"{worst_client:.0%} of core {CLIENT_CORE} (load generator) during the measurements"
    )
    say(f"\nnoise: {noise}")
    if max(worst_server, worst_client) > NOISY:
        say(
            "  the machine was not quiet: rates and latencies are understated; CPU time per "
            "message is the steadiest figure"
        )

    ceiling = results.get("ceiling")
    ceiling_line = ""
    if ceiling is not None and ceiling.throughput is not None and b_tp.rate:
        c_rate = ceiling.throughput.rate
        ceiling_line = (
            f"ceiling (benchmarks/ceiling_server.py: picows + msgspec validation, no state, no "
            f"database), same closed loop: {c_rate:,.0f} msg/s = {c_rate / b_tp.rate:.1f}x the "
            f"baseline, {ceiling.throughput.cpu_per_msg_us:,.0f} us per message; chargegrid "
            f"does {cg_tp.rate / c_rate:.0%} of its rate"
        )
        say("\n" + ceiling_line)

    say("\ntargets (reported, not asserted):")
    for what, got, verdict in targets:
        say(f"  {what:50} {got:>10}  {verdict}")
    if cfg.quick:
        say("  (--quick: tiny loads; these figures mean nothing)")

    command = shlex.join(["python", "benchmarks/ocpp_throughput.py", *cfg.argv[1:]])
    say("\n== markdown for the README ==\n")
    say(
        f"`{command}`, {started}, {machine_line()}; {pinning.note}. OCPP 1.6J over loopback; "
        "chargegrid on SQLite with validation and persistence on; baseline: "
        f"`ocpp` {pkg_version('ocpp')} + `websockets` {pkg_version('websockets')} on asyncio, "
        "state in memory (benchmarks/baseline_csms.py)."
        + (f" Not a quiet machine: {noise}." if max(worst_server, worst_client) > NOISY else "")
    )
    say("")
    say("| | chargegrid | baseline (`ocpp` + `websockets`) | chargegrid vs baseline | target |")
    say("|---|---:|---:|---:|---|")
    for r in rows:
        if r.markdown:
            cells = (r.label.strip(), r.chargegrid, r.baseline, r.advantage, r.target)
            say("| " + " | ".join(cells) + " |")
    if ceiling_line:
        say("\n" + ceiling_line[0].upper() + ceiling_line[1:] + ".")


def pkg_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


async def main_async(cfg: Config, pinning: Pinning, tmp: Path) -> dict[str, Result]:
    py = sys.executable

    def chargegrid(port: int) -> Server:
        db = tmp / f"bench-{port}.db"
        argv = [py, "-m", "chargegrid.entrypoints.cli", "serve", "--host", "127.0.0.1"]
        argv += ["--ocpp-port", str(port), "--api-port", "0", "--db", f"sqlite:///{db}"]
        argv += ["--unknown-stations", "accept", "--ping-interval", "0", "--log-level", "warning"]
        argv += ["--boot-rate", "0"]  # its stations boot as fast as they can: no storm pacing
        return Server("chargegrid", [*pinning.server_prefix, *argv], port, tmp / "chargegrid.log")

    def baseline(port: int) -> Server:
        argv = [py, str(HERE / "baseline_csms.py"), "--host", "127.0.0.1", "--port", str(port)]
        return Server("baseline", [*pinning.server_prefix, *argv], port, tmp / "baseline.log")

    def ceiling(port: int) -> Server:
        argv = [py, str(HERE / "ceiling_server.py"), "--host", "127.0.0.1", "--port", str(port)]
        return Server("ceiling", [*pinning.server_prefix, *argv], port, tmp / "ceiling.log")

    makers = (chargegrid, baseline, ceiling) if cfg.ceiling else (chargegrid, baseline)
    for make in makers:
        server = make(0)
        argv = re.sub(r"(port |bench-)0\b", r"\1PORT", shlex.join(server.argv))
        say(f"{server.name} command: {argv}")
    results = {}
    results["chargegrid"] = await run_server("chargegrid", chargegrid, cfg, pinning)
    results["baseline"] = await run_server("baseline", baseline, cfg, pinning)
    if cfg.ceiling:
        results["ceiling"] = await run_server(
            "ceiling", ceiling, cfg, pinning, throughput_only=True
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    _check_frames()
    started = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    nofile = raise_nofile()
    pinning = set_up_pinning()
    say(f"OCPP 1.6J benchmark, {started}")
    say(f"machine: {machine_line()}")
    say(f"pinning: {pinning.note}")
    say(f"open files limit: {nofile} (servers get the same)")
    say(
        f"phases: throughput {cfg.stations} stations x ({cfg.warmup:g} s warm-up + "
        f"{cfg.duration:g} s); latency {cfg.latency_stations} stations x {cfg.rate:g} msg/s for "
        f"{cfg.latency_duration:g} s; memory {cfg.idle_stations} idle stations"
    )
    say("session mix: " + ", ".join(a + (f"({s})" if s else "") for a, s in CYCLE))
    busy = wait_quiet(cfg.wait_quiet)
    load = ", ".join(f"core {c} {b:.0%}" for c, b in sorted(busy.items()))
    say(f"machine load before starting: {load}")
    if max(busy.values(), default=0.0) > 0.1:
        say("WARNING: other processes are using the CPU; the figures will be noisy")
    needed = max(cfg.stations, cfg.latency_stations, cfg.idle_stations) + 200
    if nofile < needed:
        say(f"WARNING: open files limit {nofile} < {needed}; connections may fail")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    tmp = Path(tempfile.mkdtemp(prefix="chargegrid-bench-"))
    t0 = time.perf_counter()
    try:
        runner = uvloop.run if uvloop is not None else asyncio.run
        results = runner(main_async(cfg, pinning, tmp))
    except KeyboardInterrupt:
        say("\ninterrupted")
        return 130
    except BenchError as exc:
        say(f"\nFAILED: {exc}")
        return 1
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    report(cfg, results, pinning, started)
    if cfg.profile is not None:
        summarize_profile(cfg.profile / "chargegrid-throughput.txt")
    say(f"\ntotal time {time.perf_counter() - t0:.0f} s")
    failures = [(n, f) for n, r in results.items() for f in r.failures]
    if failures:
        say("\nFAILED: the servers did not handle the valid load cleanly:")
        for name, what in failures:
            say(f"  {name}: {what}")
        return 1
    say("OK: no CALLERROR, no refused boot, every station connected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
