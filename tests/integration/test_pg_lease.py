"""The cluster lease on a real PostgreSQL: one holder, and a session that the server gives up on
within seconds when the holder goes silent (its keepalives are the session's, not the server's
two-hour defaults).

A real partition (packets dropped, no FIN or RST) needs a firewall rule or a network namespace,
which a test run cannot assume; what it relies on is checked here: the settings on the lease's
own session, and keepalives on the client's socket.
"""

from __future__ import annotations

import secrets
import socket

import pytest

from chargegrid.adapters.cluster.pg_lease import PgLease, keepalive, open_session

pytestmark = pytest.mark.postgres


async def test_the_lease_session_gives_up_on_a_silent_peer_within_seconds(pg_server: str) -> None:
    conn = await open_session(pg_server)
    try:
        shown = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in (
                "tcp_keepalives_idle",
                "tcp_keepalives_interval",
                "tcp_keepalives_count",
                "tcp_user_timeout",
            )
        }
    finally:
        await conn.close()
    assert shown == {
        "tcp_keepalives_idle": "5",
        "tcp_keepalives_interval": "2",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "10000",
    }


def test_the_client_socket_keeps_alive_too() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        keepalive(sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 5
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3


async def test_one_holder_then_the_next_once_released(pg_server: str) -> None:
    key = secrets.randbits(62)  # not the real lease's key: no interference with a cluster
    first, second = PgLease(pg_server, key), PgLease(pg_server, key)
    try:
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.check()
        await first.release()
        assert await second.acquire()
    finally:
        await first.release()
        await second.release()
