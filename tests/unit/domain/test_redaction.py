"""Secrets in CSMS requests are blanked before they are kept."""

from __future__ import annotations

from chargegrid.domain.redaction import REDACTED, redact


def test_16_authorization_key() -> None:
    assert redact("ChangeConfiguration", {"key": "AuthorizationKey", "value": "s3cret"}) == {
        "key": "AuthorizationKey",
        "value": REDACTED,
    }
    other = {"key": "HeartbeatInterval", "value": "300"}
    assert redact("ChangeConfiguration", other) is other


def test_201_basic_auth_password_only() -> None:
    payload = {
        "setVariableData": [
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "attributeValue": "s3cret",
            },
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "attributeValue": "300",
            },
        ]
    }
    out = redact("SetVariables", payload)
    assert [d["attributeValue"] for d in out["setVariableData"]] == [REDACTED, "300"]
    assert payload["setVariableData"][0]["attributeValue"] == "s3cret"  # not changed in place


def test_201_network_profile_credentials() -> None:
    payload = {
        "configurationSlot": 1,
        "connectionData": {
            "ocppCsmsUrl": "wss://x/",
            "apn": {"apn": "internet", "apnPassword": "a", "simPin": 1234},
            "vpn": {"server": "v", "user": "u", "password": "p", "key": "k"},
        },
    }
    out = redact("SetNetworkProfile", payload)
    assert out["connectionData"]["apn"] == {
        "apn": "internet",
        "apnPassword": REDACTED,
        "simPin": REDACTED,
    }
    assert out["connectionData"]["vpn"] == {
        "server": "v",
        "user": "u",
        "password": REDACTED,
        "key": REDACTED,
    }
    assert payload["connectionData"]["vpn"]["key"] == "k"


def test_other_actions_and_odd_shapes_pass_through() -> None:
    for action, payload in (
        ("Reset", {"type": "Soft"}),
        ("SetVariables", {"setVariableData": "not a list"}),
        ("SetNetworkProfile", {"connectionData": None}),
    ):
        assert redact(action, payload) is payload


def test_names_in_any_case_and_urls_with_credentials() -> None:
    assert redact("ChangeConfiguration", {"key": "authorizationKEY", "value": "s"})["value"] == (
        REDACTED
    )
    item = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "basicauthpassword"}}
    out = redact("SetVariables", {"setVariableData": [{**item, "attributeValue": "s"}]})
    assert out["setVariableData"][0]["attributeValue"] == REDACTED
    firmware = {"requestId": 1, "firmware": {"location": "ftp://u:p@host/fw.bin"}}
    assert redact("UpdateFirmware", firmware)["firmware"]["location"] == "ftp://***@host/fw.bin"
    assert firmware["firmware"]["location"] == "ftp://u:p@host/fw.bin"  # not changed in place
    assert redact("GetDiagnostics", {"location": "sftp://a:b@c/d"}) == {
        "location": "sftp://***@c/d"
    }
    assert redact("GetLog", {"log": {"remoteLocation": "https://c/d"}}) == {
        "log": {"remoteLocation": "https://c/d"}
    }
