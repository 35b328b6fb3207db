"""Signed firmware updates end to end: the REST API starts one at a station of the `ocpp`
package (2.0.1 UpdateFirmware, 1.6 SignedUpdateFirmware or core UpdateFirmware), the station
reports its progress, and the API tells where the update stands."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from api_client import Api
from certs import TestCa
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from stations import Driver, connect

from chargegrid.bootstrap import App

URL = "https://firmware.example/wallbox-2.1.0.bin"
SIGNATURE = base64.b64encode(b"\x30" * 72).decode()
STEPS = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]


async def _report(cp: Any, version: str, status: str, request_id: int | None) -> None:
    if version == "2.0.1":
        await cp.call(call201.FirmwareStatusNotification(status=status, request_id=request_id))
    elif request_id is not None:
        await cp.call(call16.SignedFirmwareStatusNotification(status=status, request_id=request_id))
    else:
        await cp.call(call16.FirmwareStatusNotification(status=status))


async def test_a_signed_update_is_sent_and_followed(
    node: App, api: Api, version: str, tmp_path: Path
) -> None:
    signer = TestCa(tmp_path, "Firmware Signer").pem.read_text()
    path = "/stations/CS-FW/firmware"
    body = {
        "location": URL,
        "retrieve_at": "2026-12-24T02:00:00+01:00",
        "retries": 3,
        "retry_interval": 600,
        "signing_certificate": signer,
        "signature": SIGNATURE,
    }
    async with connect(node.server.port, "CS-FW", version) as cp:
        assert await Driver(cp, version).boot() == "Accepted"
        refused = await api.post(path, {**body, "signing_certificate": "not PEM"}, expect=422)
        assert "not an X.509 certificate" in refused["detail"]
        await api.post(path, {**body, "signature": "*not base64*"}, expect=422)
        await api.post(path, {k: v for k, v in body.items() if k != "signature"}, expect=422)
        assert cp.received == []  # nothing invalid went out
        started = await api.post(path, body)
        operation = "UpdateFirmware" if version == "2.0.1" else "SignedUpdateFirmware"
        assert (started["operation"], started["status"]) == (operation, "Accepted")
        request_id = started["request_id"]
        [(action, sent)] = cp.received
        assert action == operation and sent["request_id"] == request_id
        assert sent["firmware"] == {
            "location": URL,
            "retrieve_date_time": "2026-12-24T01:00:00Z",
            "signing_certificate": signer,
            "signature": SIGNATURE,
        }
        for status in STEPS[:2]:
            await _report(cp, version, status, request_id)
        [update] = await api.get(path)
        assert (update["status"], update["ended"]) == ("Downloaded", False)
        for status in STEPS[2:]:
            await _report(cp, version, status, request_id)
        await _report(cp, version, "Idle", request_id + 1)  # another update's: not this one's
    [update] = await api.get(path)
    assert update["request_id"] == request_id and update["location"] == URL
    assert (update["status"], update["ended"]) == ("Installed", True)
    assert [r["status"] for r in update["reports"]] == STEPS
    assert update["answer"] == {"status": "Accepted"}


async def test_a_failed_update_ends_failed_and_16_core_updates_work(node: App, api: Api) -> None:
    path = "/stations/CS-FW16/firmware"
    async with connect(node.server.port, "CS-FW16", "1.6") as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
        started = await api.post(path, {"location": URL, "retrieve_at": "2026-12-24T02:00:00Z"})
        assert (started["operation"], started["request_id"]) == ("UpdateFirmware", None)
        assert cp.received[0][1] == {"location": URL, "retrieve_date": "2026-12-24T02:00:00Z"}
        await _report(cp, "1.6", "Downloading", None)
        await asyncio.sleep(0.05)
        await _report(cp, "1.6", "DownloadFailed", None)
    [update] = await api.get(path)
    assert (update["status"], update["ended"], update["operation"]) == (
        "DownloadFailed",
        True,
        "UpdateFirmware",
    )
    await api.post(
        "/stations/NOPE/firmware", {"location": URL, "retrieve_at": "2026-12-24T02:00:00Z"}, 404
    )
    await api.post(path, {"location": URL, "retrieve_at": "2026-12-24T02:00:00Z"}, 409)  # gone
