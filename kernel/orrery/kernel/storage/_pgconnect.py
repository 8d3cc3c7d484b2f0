"""Turning PostgreSQL connection failures into errors that say what to check."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

import asyncpg

from .errors import StorageUnavailable

__all__ = ["connect_error", "describe_dsn", "quote_ident"]


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (a schema name may hold any character)."""
    return '"' + name.replace('"', '""') + '"'


def describe_dsn(dsn: str) -> str:
    """``user@host:port/database`` for messages: never the password."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or os.environ.get("PGHOST", "localhost")
        port = parts.port or int(os.environ.get("PGPORT", "5432"))
    except ValueError:
        return "<unparseable DSN>"
    user = unquote(parts.username) if parts.username else os.environ.get("PGUSER", "")
    database = parts.path.lstrip("/") or os.environ.get("PGDATABASE", user)
    return f"{user + '@' if user else ''}{host}:{port}/{database}"


def connect_error(address: str, error: BaseException, timeout: float) -> StorageUnavailable:
    """A `StorageUnavailable` for ``error`` raised while connecting to ``address``."""
    reason = f"{type(error).__name__}: {error}".rstrip(": ")
    if isinstance(
        error, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        hint = (
            "The server refused the login: check the user and password in the DSN and the "
            "server's pg_hba.conf"
        )
    elif isinstance(error, asyncpg.InvalidCatalogNameError):
        hint = "The database does not exist: create it (createdb NAME) or fix the DSN"
    elif isinstance(error, TimeoutError):
        hint = (
            f"The server did not answer within {timeout:g}s: check the host, the network "
            f"and firewalls, or raise connect_timeout"
        )
    elif isinstance(error, OSError):
        hint = (
            "Is PostgreSQL running and listening there? Check the DSN's host and port, the "
            "server's listen_addresses, and firewalls (try: pg_isready -h HOST -p PORT)"
        )
    elif isinstance(error, ValueError):
        hint = "The DSN is malformed: use postgresql://user:password@host:port/database"
    else:
        hint = "Check the DSN, that the server is up, and the server's log"
    return StorageUnavailable("postgres", address, reason, hint)
