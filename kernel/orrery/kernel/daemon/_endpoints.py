"""The API's route table: one `Endpoint` per operation feeds both the aiohttp router and
the OpenAPI document, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

__all__ = ["Endpoint", "Param"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter of an endpoint."""

    name: str
    where: Literal["path", "query", "header"]
    description: str
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Endpoint:
    """One operation of the HTTP API."""

    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    #: Type of the successful answer's JSON (a pydantic model, ``list[Model]``, ``Any``).
    response: Any = None
    status: int = 200
    #: Pydantic model of the JSON request body, if any.
    body: Any = None
    params: tuple[Param, ...] = ()
    #: Error statuses worth documenting beyond 401 (and 413/422 for bodies).
    errors: tuple[int, ...] = ()
    public: bool = False
    #: ``orrery_authorize`` action asked before a mutating call.
    action: str | None = None
    #: Non-JSON successful answers (``text/event-stream``), or a WebSocket upgrade.
    media_type: str = "application/json"
    description: str = ""

    def register(self, router: web.UrlDispatcher) -> None:
        """Add this endpoint to an aiohttp router."""
        router.add_route(self.method, self.path, self.handler, name=self.operation_id)
