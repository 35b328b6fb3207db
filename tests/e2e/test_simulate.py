"""``chargegrid simulate`` end to end: a fleet of 50 simulated stations (both OCPP versions) on
real WebSockets against a node on a fresh database, made ready through the REST API as the
command does, then watched and commanded through the REST API as the dashboard does, and
watched in the dashboard itself (headless Chromium; skipped with the reason without it).

The node answers unknown stations Pending, as ``chargegrid serve`` does by default: the stations
charge only because the simulator registered them and their id tokens first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_client import ADMIN_TOKEN, Api

from chargegrid.bootstrap import App, build
from chargegrid.entrypoints import cli
from chargegrid.entrypoints.settings import Settings
from chargegrid.testing.simulator import Fleet, Scenario, prepare

STATIONS = 50
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@pytest.fixture
async def world(fresh_db_url: Callable[[str], str]) -> AsyncIterator[tuple[App, Api]]:
    app = await build(
        Settings(
            host="127.0.0.1",
            ocpp_port=0,
            api_port=0,
            db=fresh_db_url("sqlite"),
            ping_interval=0,
            call_timeout=5,
            admin_token=ADMIN_TOKEN,
        )
    )
    await app.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{app.api.port}", timeout=10
        ) as client:
            yield app, Api(client, ADMIN_TOKEN)
    finally:
        await app.stop()


def scenario_for(app: App, **changes: Any) -> Scenario:
    """A demonstration fleet, quick: cars come within 5 s and stay, meter values every 2 s."""
    values: dict[str, Any] = {
        "url": f"ws://127.0.0.1:{app.server.port}/ocpp",
        "api_url": f"http://127.0.0.1:{app.api.port}",
        "stations": STATIONS,
        "version": "mixed",
        "rate": 50,
        "meter_interval": 2,
        "first_arrival": 5,
        "session": (3600, 3600),
        "fault_chance": 0,
        "reconnects_per_hour": 0,
        "seed": 7,
    }
    values.update(changes)
    return Scenario(**values)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    ends = loop.time() + timeout
    while not await check():
        if loop.time() > ends:
            raise AssertionError(f"not within {timeout:g} s")
        await asyncio.sleep(0.5)


async def active(api: Api, station_id: str) -> dict[str, Any]:
    page = await api.get("/transactions", params={"station_id": station_id, "state": "Active"})
    assert len(page["items"]) == 1, page
    tx: dict[str, Any] = page["items"][0]
    return tx


def latest_power(detail: dict[str, Any]) -> float | None:
    for reading in sorted(detail["meter_values"], key=lambda r: r["timestamp"], reverse=True):
        for value in reading["values"]:
            if value["measurand"] == "Power.Active.Import":
                return float(value["value"])
    return None


async def command(api: Api, station_id: str, operation: str, payload: Any) -> dict[str, Any]:
    answer = await api.post(f"/stations/{station_id}/commands/{operation}", payload)
    response: dict[str, Any] = answer["response"]
    return response


@asynccontextmanager
async def running(app: App) -> AsyncIterator[tuple[Fleet, dict[str, Any]]]:
    """A prepared fleet of :data:`STATIONS`, running; the report is in the dict once it stopped."""
    scenario = scenario_for(app)
    fleet = Fleet(scenario)
    tokens = {t for s in fleet.stations for t in s.params.tokens}
    await prepare(scenario.api_url, ADMIN_TOKEN, scenario.station_ids(), tokens)
    stop = asyncio.Event()
    run = asyncio.create_task(fleet.run(stop))
    result: dict[str, Any] = {}
    try:
        yield fleet, result
    finally:
        stop.set()
        result.update(await run)


async def all_charging(api: Api) -> bool:
    o = await api.get("/overview")
    return bool(o["active_transactions"] == STATIONS and float(o["power_w"]) > 0)


@pytest.mark.slow
async def test_fifty_stations_charge_within_a_minute_and_answer_commands(
    world: tuple[App, Api],
) -> None:
    app, api = world
    async with running(app) as (_, report):
        await eventually(lambda: all_charging(api), timeout=60)
        overview = await api.get("/overview")
        assert overview["stations"] == overview["stations_online"] == STATIONS
        assert overview["stations_by_registration"] == {"Accepted": STATIONS}
        # 1.6 connectors say Charging (or SuspendedEV when full), 2.0.1 ones Occupied
        statuses = overview["connectors_by_status"]
        assert statuses.get("Occupied") == STATIONS // 2
        assert statuses.get("Charging", 0) + statuses.get("SuspendedEV", 0) == STATIONS // 2

        # the CSMS's commands are answered, in each station's version
        config = await command(api, "SIM-00001", "GetConfiguration", {"key": ["HeartbeatInterval"]})
        assert config["configurationKey"][0]["key"] == "HeartbeatInterval"
        variables = await command(
            api,
            "SIM-00002",
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
        )
        assert variables["getVariableResult"][0]["attributeStatus"] == "Accepted"

        # a charging profile is honoured by the car: 8 A on three phases is at most 5,520 W
        tx16 = await active(api, "SIM-00003")
        profile = {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 900,
                "transactionId": int(tx16["station_tx_id"]),
                "stackLevel": 9,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8}],
                },
            },
        }
        assert (await command(api, "SIM-00003", "SetChargingProfile", profile)) == {
            "status": "Accepted"
        }
        changed_at = datetime.now(UTC)

        async def obeyed() -> bool:
            detail = await api.get(f"/transactions/{tx16['id']}")
            newest = max(datetime.fromisoformat(r["timestamp"]) for r in detail["meter_values"])
            power = latest_power(detail)
            return newest > changed_at and power is not None and 0 < power <= 5520

        await eventually(obeyed, timeout=15)

        # remote stops, in both versions
        tx201 = await active(api, "SIM-00004")
        stop201 = {"transactionId": tx201["station_tx_id"]}
        assert (await command(api, "SIM-00004", "RequestStopTransaction", stop201)) == {
            "status": "Accepted"
        }
        stop16 = {"transactionId": int(tx16["station_tx_id"])}
        assert (await command(api, "SIM-00003", "RemoteStopTransaction", stop16)) == {
            "status": "Accepted"
        }

        async def stopped() -> bool:
            ends = [await api.get(f"/transactions/{t['id']}") for t in (tx16, tx201)]
            return all(d["transaction"]["state"] == "Ended" for d in ends)

        await eventually(stopped, timeout=15)
        for t in (tx16, tx201):
            assert (await api.get(f"/transactions/{t['id']}"))["transaction"]["stop_reason"] == (
                "Remote"
            )

    # the fleet stopped its sessions on its way out, and measured every action
    assert (await api.get("/overview"))["active_transactions"] == 0
    assert report["stations"] == STATIONS and report["versions"] == {"1.6": 25, "2.0.1": 25}
    assert report["errors"] == {} and report["failed_calls"] == {} and report["call_errors"] == {}
    for action in ("BootNotification", "Authorize", "StartTransaction", "TransactionEvent"):
        assert report["latency_ms"][action]["count"] >= STATIONS // 2
    assert report["csms_calls_answered"] == {
        "GetConfiguration": 1,
        "GetVariables": 1,
        "RemoteStopTransaction": 1,
        "RequestStopTransaction": 1,
        "SetChargingProfile": 1,
    }


async def test_the_command_prepares_runs_and_reports(
    world: tuple[App, Api], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``chargegrid simulate --json`` with an API token in the environment, for a few seconds."""
    app, api = world
    monkeypatch.setenv("CHARGEGRID_API_TOKEN", ADMIN_TOKEN)
    args = cli._parser().parse_args(
        [
            "simulate",
            "--url",
            f"ws://127.0.0.1:{app.server.port}/ocpp",
            "--api-url",
            f"http://127.0.0.1:{app.api.port}",
            "--stations",
            "4",
            "--prefix",
            "CLI-",
            "--duration",
            "3",
            "--json",
        ]
    )
    conf = Settings()
    assert await args.func(args, conf) == 0
    report = capsys.readouterr().out
    assert '"stations": 4' in report and '"BootNotification"' in report
    stations = await api.get("/stations", params={"registration": "Accepted"})
    assert sorted(s["id"] for s in stations["items"]) == [f"CLI-0000{n}" for n in range(1, 5)]


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, as in test_dashboard.py; Playwright downloads no browser of its own."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.mark.slow
@pytest.mark.browser
async def test_the_dashboard_shows_the_fleet_charging(
    world: tuple[App, Api], chromium: Path
) -> None:
    playwright = pytest.importorskip("playwright.async_api")
    app, _ = world
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with running(app), playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            await page.goto(f"http://127.0.0.1:{app.api.port}/")
            await page.get_by_label("API token").fill(ADMIN_TOKEN)
            await page.get_by_role("button", name="Log in").click()
            expect = playwright.expect
            # within the minute the README promises (expect's own default is 5 s)
            online = page.get_by_test_id("stations-online")
            await expect(online).to_have_text(str(STATIONS), timeout=60_000)
            active = page.get_by_test_id("active-transactions")
            await expect(active).to_have_text(str(STATIONS), timeout=60_000)
            power = page.get_by_test_id("power-now")
            await page.wait_for_function(
                "el => Number(el.dataset.watts) > 0", arg=await power.element_handle()
            )
            await page.screenshot(path=str(ARTIFACTS / "10-simulated-fleet.png"), full_page=True)
        finally:
            await browser.close()
