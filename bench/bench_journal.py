"""Journal append throughput on SQLite and PostgreSQL against the raw drivers.

For each backend, in the same run: appends through `orrery.kernel.storage` (single events,
and batches of 100 per call) beside raw driver inserts of the same rows into a comparable
table (same columns, same unique (namespace, stream, version) index) as the floor:
``sqlite3`` ``executemany`` per batch / one ``INSERT`` per commit, and asyncpg
``executemany`` / ``copy_records_to_table`` per batch / one ``INSERT`` per statement. Both
sides encode each event's data with msgspec. Ratios are ours / floor (1.0 = as fast as
the bare driver).

Run: ``python bench/bench_journal.py`` (``ORRERY_BENCH_PG_DSN`` picks the server, default
``postgresql://postgres@127.0.0.1:5432/test``; a throwaway schema is created and dropped).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from orrery.kernel.storage import (  # noqa: TID251 - the ban is meant for orrery.sdk
    PostgresStorage,
    SQLiteStorage,
    Storage,
    StorageUnavailable,
)

BATCH = 100
BATCHED_EVENTS = 50_000
SINGLE_EVENTS = 5_000
STREAMS = 50
PG_DSN = os.environ.get("ORRERY_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

_RAW_COLUMNS = ("namespace", "stream", "version", "type", "data", "meta", "time_ns")
_SQLITE_RAW_TABLE = """CREATE TABLE raw_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, namespace TEXT NOT NULL, stream TEXT NOT NULL,
    version INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL, meta BLOB,
    time_ns INTEGER NOT NULL, UNIQUE (namespace, stream, version))"""
_PG_RAW_TABLE = """CREATE TABLE raw_events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace text COLLATE "C" NOT NULL, stream text COLLATE "C" NOT NULL,
    version integer NOT NULL, type text NOT NULL, data bytea NOT NULL, meta bytea,
    time_ns bigint NOT NULL, UNIQUE (namespace, stream, version))"""
_encode = msgspec.json.Encoder().encode


def _payload(n: int) -> dict[str, Any]:
    return {"n": n, "agent": "planner-7", "status": "ok", "note": "x" * 40}


def _raw_row(stream: str, version: int) -> tuple[Any, ...]:
    return ("bench", stream, version, "bench.event", _encode(_payload(version)), None, 0)


async def _timed(count: int, body: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await body()
    return count / (time.perf_counter() - start)


async def _ours(storage: Storage) -> tuple[float, float]:
    """(batched, single) appends per second through the journal."""
    journal = storage.journal("bench")

    async def batched() -> None:
        versions = [0] * STREAMS
        for i in range(BATCHED_EVENTS // BATCH):
            s = i % STREAMS
            events = [
                {"type": "bench.event", "data": _payload(versions[s] + n)} for n in range(BATCH)
            ]
            versions[s] = await journal.append(f"b{s}", events, expected_version=versions[s])

    async def single() -> None:
        versions = [0] * STREAMS
        for i in range(SINGLE_EVENTS):
            s = i % STREAMS
            events = [{"type": "bench.event", "data": _payload(versions[s])}]
            versions[s] = await journal.append(f"s{s}", events, expected_version=versions[s])

    return await _timed(BATCHED_EVENTS, batched), await _timed(SINGLE_EVENTS, single)


def _sqlite_raw(path: Path) -> tuple[float, float]:
    """(executemany per batch, one insert per commit) rows per second with sqlite3."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(_SQLITE_RAW_TABLE)
    insert = f"INSERT INTO raw_events ({', '.join(_RAW_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    start = time.perf_counter()
    for i in range(BATCHED_EVENTS // BATCH):
        conn.execute("BEGIN")
        conn.executemany(insert, [_raw_row(f"b{i}", n) for n in range(1, BATCH + 1)])
        conn.execute("COMMIT")
    batched = BATCHED_EVENTS / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(SINGLE_EVENTS):
        conn.execute(insert, _raw_row("single", i + 1))
    single = SINGLE_EVENTS / (time.perf_counter() - start)
    conn.close()
    return batched, single


async def _postgres_raw(pool: asyncpg.Pool[Any]) -> tuple[float, float, float]:
    """(executemany per batch, copy per batch, one insert per statement) rows per second."""
    await pool.execute(_PG_RAW_TABLE)
    insert = (
        f"INSERT INTO raw_events ({', '.join(_RAW_COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )

    async def executemany() -> None:
        async with pool.acquire() as conn:
            for i in range(BATCHED_EVENTS // BATCH):
                async with conn.transaction():
                    rows = [_raw_row(f"m{i}", n) for n in range(1, BATCH + 1)]
                    await conn.executemany(insert, rows)

    async def copy() -> None:
        async with pool.acquire() as conn:
            for i in range(BATCHED_EVENTS // BATCH):
                rows = [_raw_row(f"c{i}", n) for n in range(1, BATCH + 1)]
                await conn.copy_records_to_table("raw_events", records=rows, columns=_RAW_COLUMNS)

    async def single() -> None:
        for i in range(SINGLE_EVENTS):
            await pool.execute(insert, *_raw_row("single", i + 1))

    return (
        await _timed(BATCHED_EVENTS, executemany),
        await _timed(BATCHED_EVENTS, copy),
        await _timed(SINGLE_EVENTS, single),
    )


async def _bench_sqlite(results: dict[str, float]) -> None:
    with tempfile.TemporaryDirectory(prefix="orrery-bench-") as tmp:
        async with SQLiteStorage(Path(tmp) / "orrery.db") as storage:
            batched, single = await _ours(storage)
        raw_batched, raw_single = _sqlite_raw(Path(tmp) / "raw.db")
    results["journal.sqlite_appends_per_s"] = batched
    results["journal.sqlite_single_appends_per_s"] = single
    results["journal.sqlite_raw_executemany_per_s"] = raw_batched
    results["journal.sqlite_raw_single_per_s"] = raw_single


async def _bench_postgres(results: dict[str, float]) -> None:
    schema = f"orrery_bench_{uuid.uuid4().hex[:12]}"
    try:
        storage = PostgresStorage(PG_DSN, schema=schema, connect_timeout=5.0)
        await storage.open()
    except StorageUnavailable as e:
        print(f"PostgreSQL benchmarks skipped: {e}")
        return
    try:
        async with storage:
            batched, single = await _ours(storage)
        pool = await asyncpg.create_pool(
            PG_DSN, min_size=1, max_size=2, server_settings={"search_path": schema}
        )
        try:
            raw_many, raw_copy, raw_single = await _postgres_raw(pool)
        finally:
            await pool.close()
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
    results["journal.postgres_appends_per_s"] = batched
    results["journal.postgres_single_appends_per_s"] = single
    results["journal.postgres_raw_executemany_per_s"] = raw_many
    results["journal.postgres_raw_copy_per_s"] = raw_copy
    results["journal.postgres_raw_single_per_s"] = raw_single


async def _run() -> dict[str, float]:
    results: dict[str, float] = {}
    await _bench_sqlite(results)
    await _bench_postgres(results)
    return results


def run() -> dict[str, float]:
    """Measure and return appends (rows) per second, keyed ``journal.*``."""
    return asyncio.run(_run())


def _print_table(results: dict[str, float]) -> None:
    rows = [
        ("sqlite", "batched x100", "sqlite_appends_per_s", "sqlite_raw_executemany_per_s"),
        ("sqlite", "single", "sqlite_single_appends_per_s", "sqlite_raw_single_per_s"),
        ("postgres", "batched x100", "postgres_appends_per_s", "postgres_raw_executemany_per_s"),
        ("postgres", "batched x100", "postgres_appends_per_s", "postgres_raw_copy_per_s"),
        ("postgres", "single", "postgres_single_appends_per_s", "postgres_raw_single_per_s"),
    ]
    print(
        f"{'backend':<9} {'appends':<13} {'ours/s':>10} {'floor':<28} {'floor/s':>10} {'ratio':>6}"
    )
    for backend, kind, ours_key, floor_key in rows:
        ours = results.get(f"journal.{ours_key}")
        floor = results.get(f"journal.{floor_key}")
        if ours is None or floor is None:
            continue
        floor_name = floor_key.removeprefix(f"{backend}_").removesuffix("_per_s")
        print(
            f"{backend:<9} {kind:<13} {ours:>10,.0f} {floor_name:<28} {floor:>10,.0f} "
            f"{ours / floor:>6.2f}"
        )
    targets = (("sqlite_appends_per_s", 20_000), ("postgres_appends_per_s", 10_000))
    for key, target in targets:
        value = results.get(f"journal.{key}")
        if value is not None:
            verdict = "meets" if value >= target else "MISSES"
            print(f"{key}: {value:,.0f}/s {verdict} the target of {target:,}/s")


if __name__ == "__main__":
    _print_table(run())
