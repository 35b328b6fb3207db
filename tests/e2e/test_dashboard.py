"""The operator dashboard in a real browser (Debian's Chromium, driven by Playwright), against a
running node and a charging station built on the `ocpp` package; and the routes it relies on
(``/``, ``/ui/...``, ``/api/v1/me``, ``/api/v1/overview``) over HTTP.

The browser test logs in, watches the station come online and change status without a reload,
starts a transaction with the Start button, sees the power chart get points and rise, and stops
it with the Stop button. It asserts on the page's text and data attributes, never on timing, and
keeps a screenshot of each step in ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from api_client import ADMIN_TOKEN, Api, wait_for
from ocpp.routing import after, on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from stations import Driver, Station16, connect, now_iso

from chargegrid.bootstrap import App, build
from chargegrid.entrypoints.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
STATION = "CP-DASH-1"
TIMEOUT_MS = 10_000


class Charging16(Station16):  # type: ignore[misc]
    """A 1.6 station that charges when told to: RemoteStartTransaction is answered Accepted,
    then StartTransaction and MeterValues every 0.3 s with rising power; RemoteStopTransaction
    ends it with StopTransaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session: asyncio.Task[None] | None = None
        # Not Task.cancel(): asyncio.wait_for in the ocpp package's call() can swallow a
        # cancellation that lands as its answer arrives (Python < 3.12), and charging goes on.
        self.stopping = asyncio.Event()
        self.transaction_id: int | None = None
        self.meter_wh = 1000

    @on("RemoteStartTransaction")
    def on_RemoteStartTransaction(self, **kwargs: Any) -> Any:  # the ocpp package routes by name
        self.received.append(("RemoteStartTransaction", kwargs))
        return result16.RemoteStartTransaction(status="Accepted")

    @after("RemoteStartTransaction")
    def charge(self, connector_id: int = 1, id_tag: str = "", **_: Any) -> None:
        self.session = asyncio.create_task(self._charge(connector_id, id_tag))

    async def _charge(self, connector: int, tag: str) -> None:
        started = await self.call(
            call16.StartTransaction(
                connector_id=connector, id_tag=tag, meter_start=self.meter_wh, timestamp=now_iso()
            )
        )
        self.transaction_id = started.transaction_id
        await self._status(connector, "Charging")
        power_w = 3000
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 0.3)
            if self.stopping.is_set():
                return
            power_w += 500
            self.meter_wh += power_w // 100
            await self.call(
                call16.MeterValues(
                    connector_id=connector,
                    transaction_id=self.transaction_id,
                    meter_value=[
                        {
                            "timestamp": now_iso(),
                            "sampled_value": [
                                {
                                    "value": str(self.meter_wh),
                                    "measurand": "Energy.Active.Import.Register",
                                    "unit": "Wh",
                                },
                                {
                                    "value": str(power_w),
                                    "measurand": "Power.Active.Import",
                                    "unit": "W",
                                },
                            ],
                        }
                    ],
                )
            )

    async def _status(self, connector: int, status: str) -> None:
        await self.call(
            call16.StatusNotification(
                connector_id=connector, error_code="NoError", status=status, timestamp=now_iso()
            )
        )

    @on("RemoteStopTransaction")
    def on_RemoteStopTransaction(self, **kwargs: Any) -> Any:
        self.received.append(("RemoteStopTransaction", kwargs))
        return result16.RemoteStopTransaction(status="Accepted")

    @after("RemoteStopTransaction")
    async def stop_charging(self, transaction_id: int, **_: Any) -> None:
        if self.session is not None:
            self.stopping.set()
            await self.session
        await self.call(
            call16.StopTransaction(
                meter_stop=self.meter_wh,
                timestamp=now_iso(),
                transaction_id=transaction_id,
                reason="Remote",
            )
        )
        await self._status(1, "Finishing")


@pytest.fixture
async def node(fresh_db_url: Any) -> AsyncIterator[App]:
    """A node on SQLite with an admin token (the browser adds enough time without PostgreSQL)."""
    app = await build(
        Settings(
            host="127.0.0.1",
            ocpp_port=0,
            api_port=0,
            db=fresh_db_url("sqlite"),
            unknown_stations="accept",
            ping_interval=0,
            call_timeout=5,
            admin_token=ADMIN_TOKEN,
        )
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


# --- the routes the dashboard relies on ----------------------------------------------------------


async def test_page_and_assets_are_public_with_strict_headers(api: Api) -> None:
    client = api.client  # no token: the page and its assets are public
    for path in ("/", "/ui/app.js", "/ui/vendor/uplot/uPlot.iife.min.js"):
        response = await client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "no-cache" in response.headers["cache-control"]
    page = await client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    assert "attachment" not in page.headers.get("content-disposition", "")
    head = page.text.split("<body>")[0]
    assert "<script" in head and "http" not in head  # every asset from this server, no CDN
    script = await client.get("/ui/app.js")
    assert "javascript" in script.headers["content-type"]
    assert (await client.get("/ui/nope.js")).status_code == 404
    assert (await client.get("/api/v1/overview")).status_code == 401


async def test_me_tells_the_role_and_name(api: Api) -> None:
    assert await api.get("/me") == {"role": "admin", "name": "admin (CHARGEGRID_ADMIN_TOKEN)"}
    created = await api.post("/api-tokens", {"name": "night shift", "role": "viewer"}, expect=201)
    assert await api.as_(created["token"]).get("/me") == {"role": "viewer", "name": "night shift"}
    await api.as_("not-a-token").get("/me", expect=401)


async def test_overview_counts_power_and_energy(node: App, api: Api) -> None:
    empty = await api.get("/overview")
    assert (empty["stations"], empty["power_w"], empty["active_transactions"]) == (0, "0", 0)
    await api.get("/overview", params={"since": "2026-01-01T00:00:00"}, expect=400)
    await api.get("/overview", params={"since": "yesterday"}, expect=400)
    async with connect(node.server.port, STATION, "1.6") as cp:
        driver = Driver(cp, "1.6")
        await driver.boot()
        await driver.status(1, "Available")
        await driver.status(2, "Faulted")
        tx_id, _ = await driver.start("TAG-1", 1000)
        await driver.meter(tx_id, 1500)  # 7.2 kW, 500 Wh so far

        async def charging() -> bool:
            o = await api.get("/overview")
            return o["power_w"] == "7200.0"

        await wait_for(charging)
        now = await api.get("/overview")
        assert now["stations"] == 1 and now["stations_online"] == 1
        assert now["stations_by_registration"] == {"Accepted": 1}
        assert now["connectors_by_status"] == {"Available": 1, "Faulted": 1}
        assert now["active_transactions"] == 1
        assert now["energy_today_wh"] == "500"
        later = await api.get("/overview", params={"since": "2999-01-01T00:00:00Z"})
        assert later["energy_today_wh"] == "0"
        await driver.stop(tx_id, 2000)
    ended = await api.get("/overview")
    assert ended["power_w"] == "0" and ended["active_transactions"] == 0
    assert ended["stations_offline"] == 1 and ended["energy_today_wh"] == "1000"


# --- the dashboard in a browser ------------------------------------------------------------------


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium (``.ci/run`` installs it); Playwright downloads no browser of its own."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Any]:
    playwright = pytest.importorskip("playwright.async_api")
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


@pytest.mark.browser
async def test_dashboard_follows_a_station_and_drives_a_session(
    node: App, api: Api, browser: Any
) -> None:
    from playwright.async_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []  # script errors and CSP violations
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )

    async def shot(name: str) -> None:
        await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    await page.goto(f"http://127.0.0.1:{node.api.port}/")
    await page.get_by_label("API token").fill("wrong-token")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not valid")
    problems.clear()  # the refused token's 401 is logged by the browser, as it should be
    await page.get_by_label("API token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.locator("#live")).to_have_attribute("data-state", "on")
    await expect(page.get_by_test_id("stations-total")).to_have_text("0")
    await shot("01-overview-empty")

    async with connect(node.server.port, STATION, "1.6", station_class=Charging16) as cp:
        driver = Driver(cp, "1.6")
        await driver.boot()
        row = page.get_by_test_id(f"station-{STATION}")
        await expect(row).to_have_attribute("data-connected", "true")
        await expect(row.get_by_test_id("connection")).to_have_text("online")
        await expect(page.get_by_test_id("stations-online")).to_have_text("1")
        await shot("02-station-online")

        await driver.status(1, "Available")
        await expect(row.get_by_test_id("connectors")).to_have_text("1: Available")
        await driver.status(1, "Preparing")
        await expect(row.get_by_test_id("connectors")).to_have_text("1: Preparing")
        await expect(page.get_by_test_id("connectors-sub")).to_have_text("1 Preparing")
        await shot("03-status-changed")

        await row.get_by_role("link", name=STATION).click()
        await expect(page.get_by_role("heading", name=f"Station {STATION}")).to_be_visible()
        await expect(page.get_by_test_id("connector-1-1")).to_have_attribute(
            "data-status", "Preparing"
        )
        await page.get_by_label("Id tag").fill("TAG-DASH")
        await page.get_by_role("button", name="Start", exact=True).click()
        answer = page.get_by_test_id("command-answer")
        await expect(answer).to_contain_text("RemoteStartTransaction: Accepted")
        assert cp.received[-1] == (
            "RemoteStartTransaction",
            {"connector_id": 1, "id_tag": "TAG-DASH"},
        )
        await expect(page.get_by_test_id("connector-1-1")).to_have_attribute(
            "data-status", "Charging"
        )

        chart = page.get_by_test_id("power-chart")
        await page.wait_for_function(
            "el => Number(el.dataset.points) >= 3", arg=await chart.element_handle()
        )
        first = float(await chart.get_attribute("data-last") or 0)
        assert first > 0
        await page.wait_for_function(
            "([el, before]) => Number(el.dataset.last) > before",
            arg=[await chart.element_handle(), first],
        )
        assert await page.get_by_test_id("station-power").inner_text() != "0.00 kW"
        await shot("04-charging")

        tx = cp.transaction_id
        await page.get_by_role("button", name=f"Stop transaction {tx}").click()
        await expect(answer).to_contain_text("RemoteStopTransaction: Accepted")
        await expect(page.get_by_text("No active transaction.")).to_be_visible()
        await expect(page.get_by_test_id("connector-1-1")).to_have_attribute(
            "data-status", "Finishing"
        )
        await shot("05-stopped")
        stored = await api.get(f"/transactions/{tx}")
        assert stored["transaction"]["state"] == "Ended"
        assert stored["transaction"]["stop_reason"] == "Remote"

        await page.get_by_role("link", name="Transactions").click()
        await page.get_by_test_id(f"transaction-{tx}").click()
        chart = page.get_by_test_id("session-chart")
        await page.wait_for_function(
            "el => Number(el.dataset.points) >= 3", arg=await chart.element_handle()
        )
        await shot("06-session")

    await page.get_by_role("link", name="Stations").click()
    row = page.get_by_test_id(f"station-{STATION}")
    await expect(row).to_have_attribute("data-connected", "false")

    await api.patch(f"/stations/{STATION}", {"latitude": 52.37, "longitude": 4.89})
    await page.get_by_role("link", name="Map").click()
    await expect(page.locator(f'[data-station="{STATION}"]')).to_have_count(1)
    await expect(page.get_by_text("1 of 1 stations have coordinates.")).to_be_visible()
    await shot("07-map")

    # A viewer sees the same pages, with the operator's buttons disabled.
    created = await api.post("/api-tokens", {"name": "wall screen", "role": "viewer"}, expect=201)
    await page.get_by_role("button", name="Log out").click()
    await page.get_by_label("API token").fill(created["token"])
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_text("wall screen (viewer)")).to_be_visible()
    await page.goto(f"http://127.0.0.1:{node.api.port}/#/stations/{STATION}")
    await expect(page.get_by_role("button", name="Start", exact=True)).to_be_disabled()
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_label("API token")).to_be_visible()
    assert problems == []
