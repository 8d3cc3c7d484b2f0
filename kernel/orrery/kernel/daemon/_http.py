"""Shared plumbing of the HTTP API: app keys, JSON answers, body parsing, the middleware
that authenticates and turns every failure into a JSON error, and authorization."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from orrery.kernel import UNMATCHED_ROUTE, HttpStats, Kernel
from pydantic import BaseModel, ValidationError

from .errors import HttpError

__all__ = [
    "KERNEL",
    "PUBLIC_PATHS",
    "ROUTE_TEMPLATE",
    "SETTINGS",
    "DaemonSettings",
    "api_middleware",
    "authorize",
    "error_response",
    "json_response",
    "parse_body",
    "principal_of",
    "route_template",
    "validation_field",
]

log = logging.getLogger("orrery.kernel.daemon")
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Who the daemon's bearer token authenticates; the orrery_authorize hook sees this name.
OPERATOR = "operator"
#: Liveness and readiness answer without a token so probes need no secret.
PUBLIC_PATHS = frozenset({"/v1/health", "/v1/ready"})
#: Request key under which plugin dispatch leaves the matched route's template, so the
#: HTTP statistics name ``/v1/plugins/x/tasks/{id}`` rather than the catch-all route.
ROUTE_TEMPLATE = web.RequestKey("orrery_route_template", str)


@dataclass
class DaemonSettings:
    """What the daemon serves with; everything has a default an operator can override."""

    token: str
    url: str = ""
    max_body_size: int = 1 << 20
    grace_period: float = 10.0
    replay_size: int = 10_000
    replay_bytes: int = 64 << 20
    stream_queue: int = 1_000
    keepalive: float = 15.0
    sandbox_layers: list[dict[str, Any]] | None = None
    #: Serve ``GET /metrics`` without a token (for scrapers that cannot send one).
    metrics_open: bool = False


KERNEL = web.AppKey("kernel", Kernel)
SETTINGS = web.AppKey("settings", DaemonSettings)

_encode = msgspec.json.Encoder().encode


def principal_of(request: web.Request) -> str:
    """Who an authenticated request comes from.

    There is one token, so one principal; this is the single place that changes when
    tokens come to name their holders.
    """
    return OPERATOR


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` as JSON (msgspec: fast, and it handles dataclasses, structs, datetimes)."""
    return web.Response(body=_encode(data), status=status, content_type="application/json")


def error_response(
    status: int,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The one error shape: ``{"status", "error", "field"}``."""
    body = {"status": status, "error": message, "field": field}
    return web.Response(
        body=_encode(body), status=status, content_type="application/json", headers=headers
    )


def validation_field(error: ValidationError, prefix: str = "") -> tuple[str, str]:
    """``(dotted.field.path, message)`` of the first error, for a 4xx answer."""
    first = error.errors(include_url=False)[0]
    parts = [prefix] if prefix else []
    parts += [str(p) for p in first["loc"]]
    message = first["msg"]
    more = len(error.errors()) - 1
    if more:
        message += f"; and {more} more error{'s' if more > 1 else ''}"
    return ".".join(parts) or "body", message


async def parse_body(request: web.Request, model: type[M]) -> M:
    """Read (bounded by the size limit: 413) and validate the JSON body against ``model``."""
    raw = await request.read()
    if not raw.strip():
        raise HttpError(400, "the request needs a JSON body; see /v1/openapi.json", field="body")
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        if e.errors()[0]["type"] == "json_invalid":
            raise HttpError(
                400, f"the body is not valid JSON: {e.errors()[0]['msg']}", field="body"
            ) from e
        field, message = validation_field(e)
        raise HttpError(422, f"{field}: {message}", field=field) from e


async def authorize(request: web.Request, action: str, resource: str) -> None:
    """Ask ``orrery_authorize``; 403 when a plugin denies, 503 when the answer fails.

    Failing closed on a broken security plugin is deliberate: a mutating call must not
    slip through because the policy could not be evaluated.
    """
    principal = principal_of(request)
    kernel = request.app[KERNEL]
    try:
        allowed = await kernel.hooks.authorize(principal, action, resource)
    except Exception as e:
        log.error("authorization of %s %s for %s failed: %s", action, resource, principal, e)
        raise HttpError(
            503, f"authorization could not be decided ({e}); check the security plugin's health"
        ) from e
    if not allowed:
        raise HttpError(
            403,
            f"{principal!r} is not allowed to {action} on {resource!r}; change the security "
            f"policy if this should be allowed",
        )


def _unauthorized(message: str) -> web.Response:
    return error_response(401, message, headers={"WWW-Authenticate": 'Bearer realm="orrery"'})


def route_template(request: web.Request) -> str:
    """The template of the route that served ``request`` (never the raw path, whose
    values would make the statistics grow without bound)."""
    template: str | None = request.get(ROUTE_TEMPLATE)
    if template is not None:
        return template
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def api_middleware(
    token: str,
    *,
    public_paths: Collection[str] = PUBLIC_PATHS,
    stats: HttpStats | None = None,
    on_answered: Callable[[Any], None] | None = None,
) -> Any:
    """Authenticate the bearer token, map every failure to a JSON error, and record
    each answer's route, status and duration into ``stats``; ``on_answered`` gets the
    transport of each answered request (the connection guard restarts its header timer).

    One middleware rather than three: each costs a coroutine hop per request, and the
    API benchmark counts them.
    """
    expected = token.encode()
    clock = time.perf_counter

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        began = clock()
        response: web.StreamResponse | None = None
        if request.path not in public_paths:
            response = _check_token(request, expected)
        if response is None:
            try:
                response = await handler(request)
            except HttpError as e:
                response = error_response(e.status, e.message, field=e.field, headers=e.headers)
            except web.HTTPException as e:
                if e.status < 400:
                    if stats is not None:
                        stats.record(
                            request.method, route_template(request), e.status, clock() - began
                        )
                    raise
                response = error_response(e.status, _http_message(e), headers=_kept_headers(e))
            except asyncio.CancelledError:
                # Not recorded: the client went away (or the daemon is draining), so
                # there is no answer whose status and duration would mean anything.
                raise
            except Exception:
                # The traceback goes to the log, never into the answer.
                log.exception("%s %s failed", request.method, request.path)
                response = error_response(
                    500, "internal error while handling the request; the daemon log has the details"
                )
        assert response is not None  # every branch above answers or raises
        if on_answered is not None:
            on_answered(request.transport)
        if stats is not None:
            stats.record(request.method, route_template(request), response.status, clock() - began)
        return response

    return middleware


def _check_token(request: web.Request, expected: bytes) -> web.Response | None:
    """None when the request carries the right bearer token, else the 401 answer."""
    offered = request.headers.get("Authorization")
    if offered is None:
        return _unauthorized(
            "missing bearer token: send 'Authorization: Bearer <token>'; 'orrery token' prints it"
        )
    scheme, _, credential = offered.partition(" ")
    if scheme.lower() != "bearer" or not _same(expected, credential.strip()):
        return _unauthorized("invalid bearer token; 'orrery token' prints the valid one")
    return None


def _same(expected: bytes, offered: str) -> bool:
    return hmac.compare_digest(expected, offered.encode("utf-8", "surrogateescape"))


def _http_message(e: web.HTTPException) -> str:
    if e.status == 404:
        return "no such endpoint; GET /v1/openapi.json lists them"
    if e.status == 405:
        allowed = e.headers.get("Allow", "")
        return f"method not allowed here; use {allowed}" if allowed else "method not allowed"
    if e.status == 413:
        return (
            "request body too large; send less or raise the daemon's --max-body-size "
            f"({e.text or ''})".replace(" ()", "")
        )
    return e.text or e.reason


def _kept_headers(e: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in e.headers.items() if k in ("Allow", "Retry-After")}
