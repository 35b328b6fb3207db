"""The NATS URL's user:password@ never shows in what the broker adapter says."""

from __future__ import annotations

from chargegrid.adapters.cluster.nats_broker import scrub


def test_userinfo_and_passwords_are_blanked() -> None:
    servers = "nats://cg:s3cretpass@nats-1:4222, nats://cg:s3cretpass@nats-2:4222"
    said = scrub(f"cannot reach {servers}; auth failed for s3cretpass", servers)
    assert "s3cretpass" not in said
    assert "nats://***@nats-1:4222" in said
    assert scrub("Connect call failed ('127.0.0.1', 4222)") == (
        "Connect call failed ('127.0.0.1', 4222)"
    )
