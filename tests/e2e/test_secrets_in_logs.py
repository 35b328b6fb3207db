"""No secret reaches a log line, the OCPP message log or the command log.

A node runs with real logging (JSON lines at debug level, every library included) while stations
authenticate with right and wrong passwords, API callers use right and wrong tokens, a webhook
is made with a secret and a URL with a password, and the CSMS sends stations their new
passwords (1.6 ChangeConfiguration AuthorizationKey, 2.0.1 SetVariables BasicAuthPassword, a
SetNetworkProfile with VPN and APN credentials). Then every secret is looked for in what was
written.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace
from typing import Any

import httpx
import pytest
import structlog
from api_client import ADMIN_TOKEN, Api
from certs import csr_for
from ocpp.v201 import call as call201
from stations import Driver, connect
from test_handshake import basic, refused

from chargegrid.bootstrap import build
from chargegrid.entrypoints import logs
from chargegrid.entrypoints.settings import Settings, ca_folder

STATION_PASSWORD = "station-pw-0123456789"
WRONG_PASSWORD = "wrong-pw-9876543210x"
NEW_KEY_16 = "new-authorization-key-16"
NEW_PASSWORD_201 = "new-basic-auth-pw-201"
VPN_KEY = "vpn-shared-key-secret"
VPN_PASSWORD = "vpn-password-secret"
APN_PASSWORD = "apn-password-secret"
WEBHOOK_SECRET = "webhook-secret-0123456789abcdef"
URL_PASSWORD = "url-password-secret"
PEER_LOGGERS = ("ocpp", "websockets.client")


@pytest.fixture
def captured() -> Any:
    root = logging.getLogger()
    saved = root.level, root.handlers[:]
    stream = io.StringIO()
    logs.configure("debug", "json", stream=stream, cache_loggers=False)
    try:
        yield stream
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        structlog.reset_defaults()


async def test_no_secret_is_logged_or_kept(api_settings: Settings, captured: io.StringIO) -> None:
    node = await build(replace(api_settings, ocpp_port=0))
    await node.start()
    secrets = [
        STATION_PASSWORD,
        WRONG_PASSWORD,
        NEW_KEY_16,
        NEW_PASSWORD_201,
        VPN_KEY,
        VPN_PASSWORD,
        APN_PASSWORD,
        WEBHOOK_SECRET,
        URL_PASSWORD,
        ADMIN_TOKEN,
    ]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{node.api.port}", timeout=10
        ) as client:
            api = Api(client, ADMIN_TOKEN)
            secrets += await _exercise(node.server.port, api)
            kept = [
                await api.get("/stations/CS-S16/messages", params={"limit": 200}),
                await api.get("/stations/CS-S201/messages", params={"limit": 200}),
                await api.get("/stations/CS-S16/command-log"),
                await api.get("/stations/CS-S201/command-log"),
                await api.get("/stations/CS-S16/configuration"),
                await api.get("/stations/CS-S201/configuration"),
            ]
    finally:
        await node.stop()
    # The stations' own libraries (the ocpp package, websockets' client) log what they receive:
    # they are the test's peers in this process, not the server.
    ca_key = (ca_folder(node.settings) / "ca.key").read_text()
    secrets += [line for line in ca_key.splitlines() if "-----" not in line]  # the key, by line
    written = "\n".join(
        line
        for line in captured.getvalue().splitlines()
        if not json.loads(line).get("logger", "").startswith(PEER_LOGGERS)
    )
    assert "handshake refused" in written and '"level": "debug"' in written  # it was logging
    assert "AuthorizationKey" in repr(kept) and "BasicAuthPassword" in repr(kept)
    for secret in secrets:
        assert secret not in written, f"{secret!r} in the log"
        assert secret not in repr(kept), f"{secret!r} kept in the message or command log"


async def _exercise(port: int, api: Api) -> list[str]:
    """Everything that handles a secret; returns the secrets the server made."""
    await api.post("/stations", {"id": "CS-S16", "password": STATION_PASSWORD}, 201)
    await refused(port, "/ocpp/CS-S16", headers=basic("CS-S16", WRONG_PASSWORD))
    await api.as_(f"not-a-token-{WRONG_PASSWORD}").get("/stations", expect=401)
    token = (await api.post("/api-tokens", {"name": "ops", "role": "operator"}, 201))["token"]
    await api.as_(token).get("/stations")
    await api.post(
        "/webhooks",
        {
            "url": f"http://hook:{URL_PASSWORD}@127.0.0.1:9/receiver",
            "secret": WEBHOOK_SECRET,
        },
        201,
    )
    async with connect(port, "CS-S16", "1.6", password=STATION_PASSWORD) as cp16:
        assert await Driver(cp16, "1.6").boot() == "Accepted"
        await api.post(
            "/stations/CS-S16/commands/ChangeConfiguration",
            {"key": "AuthorizationKey", "value": NEW_KEY_16},
        )
        await api.post(  # the key in another case is the same key
            "/stations/CS-S16/commands/ChangeConfiguration",
            {"key": "authorizationkey", "value": NEW_KEY_16},
        )
        await api.post(
            "/stations/CS-S16/commands/UpdateFirmware",
            {
                "location": f"ftp://fw:{URL_PASSWORD}@127.0.0.1/fw.bin",
                "retrieveDate": "2030-01-01T00:00:00Z",
            },
        )
        assert cp16.received[0][1]["value"] == NEW_KEY_16  # the station got it whole
        generated16 = (await api.post("/stations/CS-S16/password", expect=201))["password"]
        assert cp16.received[-1][1]["value"] == generated16
    async with connect(port, "CS-S201", "2.0.1") as cp201:
        assert await Driver(cp201, "2.0.1").boot() == "Accepted"
        csr, _ = csr_for("CS-S201", org="")
        signed = await cp201.call(call201.SignCertificate(csr=csr))
        assert signed.status == "Accepted"  # the CA made its key and signed
        await api.post(
            "/stations/CS-S201/commands/SetVariables",
            {
                "setVariableData": [
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "BasicAuthPassword"},
                        "attributeValue": NEW_PASSWORD_201,
                    }
                ]
            },
        )
        await api.post(
            "/stations/CS-S201/commands/SetNetworkProfile",
            {
                "configurationSlot": 1,
                "connectionData": {
                    "ocppVersion": "OCPP20",
                    "ocppTransport": "JSON",
                    "ocppCsmsUrl": "ws://127.0.0.1/ocpp/",
                    "messageTimeout": 30,
                    "securityProfile": 1,
                    "ocppInterface": "Wireless0",
                    "apn": {
                        "apn": "internet",
                        "apnAuthentication": "AUTO",
                        "apnPassword": APN_PASSWORD,
                    },
                    "vpn": {
                        "server": "vpn.example",
                        "user": "cs",
                        "password": VPN_PASSWORD,
                        "key": VPN_KEY,
                        "type": "IPSec",
                    },
                },
            },
        )
        generated201 = (await api.post("/stations/CS-S201/password", expect=201))["password"]
    return [token, generated16, generated201]
