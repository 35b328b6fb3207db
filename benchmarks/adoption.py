"""What a cluster node reads when stations connect to it (``SqlStore.adopt_many``), as their
history grows.

A node of a cluster keeps in memory, for each station it holds, the station's row, its active
transactions and its latest 16 ended ones. It reads them for up to 500 connecting stations at a
time. This script fills a PostgreSQL database with ``--stations`` stations of ``--history``
ended transactions each (plus one running each), then adopts them all, in batches of 500, on a
fresh store each time. The baseline, on the same database in the same run, is the query that
read the ended transactions before migration 0013: a window over the stations' transactions,
which reads every one of them.

    python benchmarks/adoption.py [--stations 1000] [--history 1000] [--repeat 5]

Skips with a message when PostgreSQL (``--pg``) does not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time

import asyncpg

from chargegrid.adapters.storage.migrate import upgrade
from chargegrid.adapters.storage.store import open_store

BATCH = 500

# The ended transactions as read before migration 0013 (what SQLite still runs).
WINDOW = """
SELECT * FROM (
    SELECT t.*, row_number() OVER (PARTITION BY station_id ORDER BY id DESC) AS latest
    FROM transactions t WHERE station_id = ANY($1::text[]) AND state != 'Active'
) ranked WHERE latest <= 16 ORDER BY id
"""


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stations", type=int, default=1000)
    p.add_argument("--history", type=int, default=1000, help="ended transactions per station")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    return p.parse_args()


async def fill(url: str, stations: int, history: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """INSERT INTO stations (id, registration, online, lenient, security_profile)
            SELECT 'CS-' || g, 'Accepted', false, '[]', 0 FROM generate_series(0, $1 - 1) g""",
            stations,
        )
        # ids in the order of time, the stations' sessions interleaved as they would be
        await conn.execute(
            """INSERT INTO transactions (station_id, station_tx_id, evse_id, connector_id,
                id_token, started_at, meter_start_wh, state, stopped_at, meter_stop_wh)
            SELECT 'CS-' || (g % $1), g::text, 1, 1, 'TAG-' || (g % 97),
                now() - (($2 - g) * interval '1 minute'), '0',
                CASE WHEN g >= $2 - $1 THEN 'Active' ELSE 'Ended' END,
                CASE WHEN g >= $2 - $1 THEN NULL ELSE now() END,
                CASE WHEN g >= $2 - $1 THEN NULL ELSE '12000' END
            FROM generate_series(0, $2 - 1) g""",
            stations,
            stations * (history + 1),
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def adopt_all(url: str, ids: list[str]) -> float:
    store = await open_store(url, shared=True)
    try:
        start = time.perf_counter()
        for i in range(0, len(ids), BATCH):
            await store.adopt_many(ids[i : i + BATCH])
        return time.perf_counter() - start
    finally:
        await store.close()


async def window_all(url: str, ids: list[str]) -> float:
    conn = await asyncpg.connect(url)
    try:
        start = time.perf_counter()
        for i in range(0, len(ids), BATCH):
            await conn.fetch(WINDOW, ids[i : i + BATCH])
        return time.perf_counter() - start
    finally:
        await conn.close()


async def main(a: argparse.Namespace) -> int:
    try:
        admin = await asyncpg.connect(a.pg, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"skipped: PostgreSQL at {a.pg} does not answer ({exc})")
        return 0
    name = f"chargegrid_adoption_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = a.pg.rsplit("/", 1)[0] + f"/{name}"
        await asyncio.to_thread(upgrade, url)
        await fill(url, a.stations, a.history)
        ids = [f"CS-{i}" for i in range(a.stations)]
        adopted = min([await adopt_all(url, ids) for _ in range(a.repeat)])
        window = min([await window_all(url, ids) for _ in range(a.repeat)])
        print(
            f"{a.stations} stations of {a.history} ended transactions each, batches of {BATCH}, "
            f"best of {a.repeat}:"
        )
        print(f"  baseline: the window query alone      {window * 1000:8.1f} ms")
        print(f"  adopt_many (rows, active, latest 16)  {adopted * 1000:8.1f} ms")
        print(f"  adopt_many / baseline                 {adopted / window:8.2f}x")
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
