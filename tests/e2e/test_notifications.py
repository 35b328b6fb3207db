"""What a station reports on its own is kept: security events, firmware / log / diagnostics
status, data transfers, and (2.0.1) its device model from NotifyReport."""

from __future__ import annotations

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from stations import Driver, connect, now_iso

from chargegrid.bootstrap import App
from chargegrid.domain.model import ConfigValue


async def test_station_reports_are_kept(app: App, version: str) -> None:
    async with connect(app.server.port, "CS-N", version) as cp:
        await Driver(cp, version).boot()
        if version == "1.6":
            await cp.call(
                call16.SecurityEventNotification(
                    type="FirmwareUpdated", timestamp=now_iso(), tech_info="v1.2.4"
                )
            )
            await cp.call(call16.FirmwareStatusNotification(status="Installing"))
            await cp.call(call16.DiagnosticsStatusNotification(status="Uploaded"))
            await cp.call(call16.LogStatusNotification(status="Uploading", request_id=7))
            answer = await cp.call(
                call16.DataTransfer(vendor_id="com.acme", message_id="hello", data="{}")
            )
        else:
            await cp.call(
                call201.SecurityEventNotification(
                    type="FirmwareUpdated", timestamp=now_iso(), tech_info="v1.2.4"
                )
            )
            await cp.call(call201.FirmwareStatusNotification(status="Installing", request_id=3))
            await cp.call(call201.LogStatusNotification(status="Uploading", request_id=7))
            answer = await cp.call(
                call201.DataTransfer(vendor_id="com.acme", message_id="hello", data={"a": 1})
            )
    assert answer.status == "UnknownVendorId"  # no vendor extension is installed
    store = app.store
    events = await store.security_events("CS-N")
    assert [(e.kind, e.tech_info) for e in events] == [("FirmwareUpdated", "v1.2.4")]
    reports = {(r.topic, r.status, r.request_id) for r in await store.reports("CS-N")}
    assert ("firmware", "Installing", None if version == "1.6" else 3) in reports
    assert ("log", "Uploading", 7) in reports
    transfers = await store.data_transfers("CS-N")
    assert [(t.vendor_id, t.message_id) for t in transfers] == [("com.acme", "hello")]


async def test_notify_report_keeps_the_device_model(app: App) -> None:
    async with connect(app.server.port, "CS-DM", "2.0.1") as cp:
        await Driver(cp, "2.0.1").boot()
        await cp.call(
            call201.NotifyReport(
                request_id=1,
                generated_at=now_iso(),
                seq_no=0,
                tbc=False,
                report_data=[
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                        "variable_attribute": [
                            {"type": "Actual", "value": "300", "mutability": "ReadWrite"}
                        ],
                        "variable_characteristics": {
                            "data_type": "integer",
                            "supports_monitoring": True,
                            "unit": "s",
                        },
                    },
                    {
                        "component": {"name": "EVSE", "evse": {"id": 1}},
                        "variable": {"name": "Power"},
                        "variable_attribute": [
                            {"type": "MaxSet", "value": "22000", "mutability": "ReadOnly"}
                        ],
                        "variable_characteristics": {
                            "data_type": "decimal",
                            "supports_monitoring": False,
                        },
                    },
                ],
            )
        )
    config = {(c.component, c.variable, c.attribute): c for c in await app.store.config("CS-DM")}
    heartbeat = config[("OCPPCommCtrlr", "HeartbeatInterval", "Actual")]
    assert heartbeat.value == "300" and not heartbeat.readonly
    assert heartbeat.extra["data_type"] == "integer" and heartbeat.extra["unit"] == "s"
    power: ConfigValue = config[("EVSE", "Power", "MaxSet")]
    assert power.value == "22000" and power.readonly and power.evse_id == 1
