"""Versioned schema migrations for both backends.

Each migration runs once, inside one transaction together with the row recording it in
``orrery_migrations``; a new schema change is a new entry appended to the lists below,
never an edit of an applied one. Callers hold a cross-process lock (SQLite: the write
lock of ``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock) while migrating.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .errors import MigrationError

__all__ = [
    "POSTGRES_APPEND_LOCK",
    "POSTGRES_CHANNEL_PREFIX",
    "POSTGRES_MIGRATE_LOCK",
    "POSTGRES_MIGRATIONS",
    "SQLITE_MIGRATIONS",
    "Migration",
    "pending_migrations",
]

#: First key of the two-key advisory locks (``pg_advisory_xact_lock(int, int)``); the
#: second key is a hash of the schema (migrations) or of the namespace (appends).
POSTGRES_MIGRATE_LOCK = 0x0E7E_0001
POSTGRES_APPEND_LOCK = 0x0E7E_0002
#: Appends announce ``[namespace, stream]`` on the LISTEN/NOTIFY channel of their schema:
#: this prefix and the first 16 hex digits of the md5 of the schema's name.
POSTGRES_CHANNEL_PREFIX = "orrery_journal_"
POSTGRES_NOTIFY_MAX = 7900


class Migration(NamedTuple):
    """One schema change: its version (1, 2, …), a short name and its statements."""

    version: int
    name: str
    statements: tuple[str, ...]


SQLITE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS orrery_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_ns INTEGER NOT NULL
)"""

SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "key-value stores, journal, snapshots",
        (
            # TEXT keys compare with BINARY collation: UTF-8 byte order, which is
            # code-point order, the order scan() promises.
            """CREATE TABLE orrery_kv (
                namespace TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (namespace, key)
            ) WITHOUT ROWID""",
            # AUTOINCREMENT: a position is never handed out twice, even after deletes.
            """CREATE TABLE orrery_events (
                position INTEGER PRIMARY KEY AUTOINCREMENT,
                namespace TEXT NOT NULL,
                stream TEXT NOT NULL,
                version INTEGER NOT NULL CHECK (version > 0),
                type TEXT NOT NULL,
                data BLOB NOT NULL,
                meta BLOB,
                time_ns INTEGER NOT NULL,
                UNIQUE (namespace, stream, version)
            )""",
            "CREATE INDEX orrery_events_by_position ON orrery_events (namespace, position)",
            """CREATE TABLE orrery_snapshots (
                namespace TEXT NOT NULL,
                stream TEXT NOT NULL,
                version INTEGER NOT NULL,
                state BLOB NOT NULL,
                time_ns INTEGER NOT NULL,
                PRIMARY KEY (namespace, stream, version)
            ) WITHOUT ROWID""",
        ),
    ),
)

POSTGRES_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS orrery_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "key-value stores, journal, snapshots",
        (
            # COLLATE "C": byte order whatever the database's locale, so scan() order and
            # the prefix range match SQLite's.
            """CREATE TABLE orrery_kv (
                namespace text COLLATE "C" NOT NULL,
                key text COLLATE "C" NOT NULL,
                value bytea NOT NULL,
                PRIMARY KEY (namespace, key)
            )""",
            """CREATE TABLE orrery_events (
                position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                namespace text COLLATE "C" NOT NULL,
                stream text COLLATE "C" NOT NULL,
                version integer NOT NULL CHECK (version > 0),
                type text NOT NULL,
                data bytea NOT NULL,
                meta bytea,
                time_ns bigint NOT NULL,
                UNIQUE (namespace, stream, version)
            )""",
            "CREATE INDEX orrery_events_by_position ON orrery_events (namespace, position)",
            """CREATE TABLE orrery_snapshots (
                namespace text COLLATE "C" NOT NULL,
                stream text COLLATE "C" NOT NULL,
                version integer NOT NULL,
                state bytea NOT NULL,
                time_ns bigint NOT NULL,
                PRIMARY KEY (namespace, stream, version)
            )""",
            # One round trip per append. The advisory lock makes appends to a namespace
            # take turns until commit, so positions become visible in increasing order
            # and a read_all() follower never skips an event committed late. Each
            # statement of a plpgsql function takes a fresh snapshot, so the version
            # read after the lock sees the previous holder's rows.
            f"""CREATE FUNCTION orrery_append(
                p_namespace text, p_stream text, p_expected integer,
                p_types text[], p_data bytea[], p_meta bytea[], p_time_ns bigint,
                OUT o_appended boolean, OUT o_version integer
            ) LANGUAGE plpgsql AS $fn$
            DECLARE
                current_version integer;
                payload text;
            BEGIN
                PERFORM pg_advisory_xact_lock({POSTGRES_APPEND_LOCK}, hashtext(p_namespace));
                SELECT coalesce(max(e.version), 0) INTO current_version
                  FROM orrery_events e
                 WHERE e.namespace = p_namespace AND e.stream = p_stream;
                IF p_expected IS NOT NULL AND p_expected <> current_version THEN
                    o_appended := false;
                    o_version := current_version;
                    RETURN;
                END IF;
                INSERT INTO orrery_events (namespace, stream, version, type, data, meta, time_ns)
                SELECT p_namespace, p_stream, current_version + u.n, u.t, u.d, u.m, p_time_ns
                  FROM unnest(p_types, p_data, p_meta) WITH ORDINALITY AS u(t, d, m, n);
                o_appended := true;
                o_version := current_version + coalesce(cardinality(p_types), 0);
                IF o_version > current_version THEN
                    -- Wakes subscribers in other processes (delivered at commit). Payloads
                    -- are capped at 8000 bytes: for longer names send '' (wake everyone).
                    payload := json_build_array(p_namespace, p_stream)::text;
                    IF octet_length(payload) > {POSTGRES_NOTIFY_MAX} THEN
                        payload := '';
                    END IF;
                    PERFORM pg_notify(
                        '{POSTGRES_CHANNEL_PREFIX}' || left(md5(current_schema()), 16), payload
                    );
                END IF;
            END
            $fn$""",
        ),
    ),
)


def pending_migrations(
    migrations: tuple[Migration, ...], applied: Iterable[int], where: str
) -> list[Migration]:
    """The migrations not yet applied, in order.

    Raises `MigrationError` when the database has a version this code does not know:
    it was migrated by a newer Orrery, and running older code against it could corrupt it.
    """
    done = set(applied)
    latest = migrations[-1].version
    unknown = sorted(v for v in done if v > latest)
    if unknown:
        raise MigrationError(
            f"{where} has schema version {unknown[-1]} but this Orrery knows only up to "
            f"{latest}; upgrade Orrery (or point it at another database)",
            version=unknown[-1],
        )
    return [m for m in migrations if m.version not in done]
