"""What of an HTTP request crosses into a sandboxed plugin's worker.

A route handler in a worker gets the method, the path relative to the plugin's mount
point, path parameters, the query, the JSON body, its content type, the authenticated
principal, and only the headers in `FORWARDED_HEADERS` (plus those the plugin names with
an ``http.header:NAME`` permission). Credentials never cross: `NEVER_FORWARDED` headers
are dropped whatever a permission says, because with the daemon's token a plugin could
install code through the API and run as the daemon.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["FORWARDED_HEADERS", "NEVER_FORWARDED", "forwarded_headers", "request_row"]

#: Headers a sandboxed route handler sees by default (compared case-insensitively).
FORWARDED_HEADERS: frozenset[str] = frozenset({
    "accept",
    "accept-language",
    "content-type",
    "content-length",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "user-agent",
    "x-request-id",
})
#: Headers that never reach a worker, even when a permission names them.
NEVER_FORWARDED: frozenset[str] = frozenset({
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
})


def forwarded_headers(extra: Iterable[str]) -> frozenset[str]:
    """The lower-case header names forwarded for a plugin granted ``http.header:NAME``s."""
    wanted = FORWARDED_HEADERS | {h.lower() for h in extra}
    return frozenset(wanted - NEVER_FORWARDED)


def request_row(
    request: Any, body: Any, allowed: frozenset[str]
) -> dict[str, Any]:
    """The plain-data request sent to the worker; ``allowed`` from `forwarded_headers`."""
    headers: Mapping[str, str] = request.headers
    kept: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower()
        if low in allowed and low not in NEVER_FORWARDED and name not in kept:
            kept[name] = value
    content_type = next((v for k, v in kept.items() if k.lower() == "content-type"), "")
    return {
        "method": request.method,
        "path": request.path,
        "params": dict(request.params),
        "query": dict(request.query),
        "headers": kept,
        "content_type": content_type,
        "principal": request.principal,
        "body": body,
    }
