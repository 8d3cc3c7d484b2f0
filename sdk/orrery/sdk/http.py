"""Helpers for plugin HTTP route handlers: query parameters parsed with a clear 400.

::

    from orrery.sdk import http

    async def list_tasks(request: HttpRequest) -> list[dict[str, Any]]:
        limit = http.query_int(request, "limit", default=100, min=1, max=1000)
        state = http.query_choice(request, "state", ["queued", "running"], default=None)
        ...

A missing parameter gives ``default``; a bad one raises `HttpError` (400) naming it,
which the daemon answers as ``{"error": "...", "field": "limit"}``. Route handlers may
also raise `LookupError` (404) and `ValueError` (400): the daemon maps them by default.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeVar, overload

from ._context import HttpRequest
from .errors import HttpError

__all__ = [
    "HttpError",
    "bad_request",
    "not_found",
    "query_bool",
    "query_choice",
    "query_float",
    "query_int",
    "query_str",
]

D = TypeVar("D")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def bad_request(name: str, message: str) -> HttpError:
    """A 400 about request field ``name``: ``query parameter 'limit': <message>``."""
    return HttpError(400, f"query parameter {name!r}: {message}", field=name)


def not_found(message: str) -> HttpError:
    """A 404 with ``message`` (say what was not found and how to list what exists)."""
    return HttpError(404, message)


def _raw(request: HttpRequest, name: str) -> str | None:
    value = request.query.get(name)
    return None if value is None or value == "" else value


@overload
def query_str(
    request: HttpRequest, name: str, default: None = None, *, max_length: int | None = None
) -> str | None: ...
@overload
def query_str(
    request: HttpRequest, name: str, default: D, *, max_length: int | None = None
) -> str | D: ...


def query_str(
    request: HttpRequest,
    name: str,
    default: Any = None,
    *,
    max_length: int | None = None,
) -> Any:
    """The parameter as text, or ``default`` when it is absent or empty."""
    raw = _raw(request, name)
    if raw is None:
        return default
    if max_length is not None and len(raw) > max_length:
        raise bad_request(name, f"is {len(raw)} characters long; at most {max_length} allowed")
    return raw


@overload
def query_int(
    request: HttpRequest,
    name: str,
    default: None = None,
    *,
    min: int | None = None,
    max: int | None = None,
) -> int | None: ...
@overload
def query_int(
    request: HttpRequest, name: str, default: D, *, min: int | None = None, max: int | None = None
) -> int | D: ...


def query_int(
    request: HttpRequest,
    name: str,
    default: Any = None,
    *,
    min: int | None = None,
    max: int | None = None,
) -> Any:
    """The parameter as an integer within ``[min, max]``, or ``default`` when absent."""
    raw = _raw(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(name, f"expected an integer, got {raw!r}") from None
    _check_range(name, value, min, max)
    return value


@overload
def query_float(
    request: HttpRequest,
    name: str,
    default: None = None,
    *,
    min: float | None = None,
    max: float | None = None,
) -> float | None: ...
@overload
def query_float(
    request: HttpRequest,
    name: str,
    default: D,
    *,
    min: float | None = None,
    max: float | None = None,
) -> float | D: ...


def query_float(
    request: HttpRequest,
    name: str,
    default: Any = None,
    *,
    min: float | None = None,
    max: float | None = None,
) -> Any:
    """The parameter as a finite number within ``[min, max]``, or ``default`` when absent."""
    raw = _raw(request, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(name, f"expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise bad_request(name, f"expected a finite number, got {raw!r}")
    _check_range(name, value, min, max)
    return value


@overload
def query_bool(request: HttpRequest, name: str, default: None = None) -> bool | None: ...
@overload
def query_bool(request: HttpRequest, name: str, default: D) -> bool | D: ...


def query_bool(
    request: HttpRequest,
    name: str,
    default: Any = None,
) -> Any:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case), or ``default`` when absent."""
    raw = _raw(request, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise bad_request(name, f"expected true or false, got {raw!r}")


@overload
def query_choice(
    request: HttpRequest, name: str, choices: Iterable[str], default: None = None
) -> str | None: ...
@overload
def query_choice(
    request: HttpRequest, name: str, choices: Iterable[str], default: D
) -> str | D: ...


def query_choice(
    request: HttpRequest,
    name: str,
    choices: Iterable[str],
    default: Any = None,
) -> Any:
    """The parameter if it is one of ``choices``, or ``default`` when absent."""
    allowed = list(choices)
    raw = _raw(request, name)
    if raw is None:
        return default
    if raw not in allowed:
        raise bad_request(name, f"expected one of {', '.join(allowed)}; got {raw!r}")
    return raw


def _check_range(name: str, value: Any, low: Any, high: Any) -> None:
    if low is not None and value < low:
        raise bad_request(name, f"must be at least {low}, got {value}")
    if high is not None and value > high:
        raise bad_request(name, f"must be at most {high}, got {value}")
