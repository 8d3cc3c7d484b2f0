"""The OpenAPI 3.1 document, built from the same `Endpoint` table the router uses plus the
plugin routes mounted right now."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from orrery.kernel.plugins import Route
from pydantic import BaseModel, TypeAdapter

from ._endpoints import Endpoint
from ._models import ErrorOut

__all__ = ["build_openapi", "shadowed"]

_REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")
_ERRORS = {
    400: "Malformed request: the body is not JSON or the upgrade is missing",
    401: "Missing or invalid bearer token",
    403: "Denied by the orrery_authorize hook",
    404: "No such plugin or route",
    405: "Method not allowed at this path",
    409: "The plugin's state does not allow it (e.g. a reload that was rejected)",
    413: "Request body larger than the daemon's limit",
    422: "The body or a parameter is invalid; 'field' names it",
    500: "The plugin route raised; the daemon log has the details",
    502: "The reply could not be encoded as JSON",
    503: "The daemon is shutting down, or authorization could not be decided",
    504: "No reply arrived within the timeout",
}


class _Schemas:
    """Collects component schemas while turning types into references."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, kind: Any) -> dict[str, Any]:
        schema: dict[str, Any] = TypeAdapter(kind).json_schema(ref_template=_REF)
        self.components.update(schema.pop("$defs", {}))
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.components[kind.__name__] = schema
            return {"$ref": _REF.format(model=kind.__name__)}
        return schema


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(status: int, schemas: _Schemas) -> dict[str, Any]:
    return {"description": _ERRORS.get(status, "Error"), "content": _json(schemas.ref(ErrorOut))}


def _path_params(path: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
        }
        for name in _PARAM.findall(path)
    ]


def _operation(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
    }
    if endpoint.description:
        op["description"] = endpoint.description
    if endpoint.action:
        op["x-orrery-action"] = endpoint.action
    params = _path_params(endpoint.path)
    for p in endpoint.params:
        if p.where == "path":
            continue
        params.append(
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "description": p.description,
                "schema": p.schema,
            }
        )
    if params:
        op["parameters"] = params
    errors = set(endpoint.errors)
    if endpoint.body is not None:
        op["requestBody"] = {"required": True, "content": _json(schemas.ref(endpoint.body))}
        errors |= {400, 413, 422}
    if endpoint.media_type == "websocket":
        responses: dict[str, Any] = {"101": {"description": "Switching to the WebSocket protocol"}}
    elif endpoint.media_type == "text/event-stream":
        responses = {
            "200": {
                "description": "An endless Server-Sent Events stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        }
    elif endpoint.media_type != "application/json":
        # Text answers (the Prometheus exposition): documented as a string of that type.
        responses = {
            str(endpoint.status): {
                "description": endpoint.summary,
                "content": {endpoint.media_type: {"schema": {"type": "string"}}},
            }
        }
    else:
        responses = {
            str(endpoint.status): {
                "description": endpoint.summary,
                "content": _json(schemas.ref(endpoint.response)),
            }
        }
    if endpoint.params and any(p.name == "pattern" for p in endpoint.params):
        errors.add(422)
    if not endpoint.public:
        errors.add(401)
    else:
        op["security"] = []
    for status in sorted(errors):
        responses[str(status)] = _error(status, schemas)
    op["responses"] = responses
    return op


def _plugin_operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": _NOT_WORD.sub("_", f"plugin_{route.plugin}_{route.method}{route.path}")
        .strip("_")
        .lower(),
        "summary": f"Route of plugin {route.plugin}",
        "tags": [f"plugin:{route.plugin}"],
        "responses": {
            "200": {
                "description": "Whatever the plugin returns: JSON, or text and bytes of the "
                "content type it names (orrery.sdk.HttpResponse)",
                "content": {**_json({}), "*/*": {"schema": {}}},
            },
            **{str(s): _error(s, schemas) for s in (400, 401, 403, 404, 413, 500)},
        },
    }
    if route.method != "GET":
        op["x-orrery-action"] = f"http.{route.method.lower()}"
        op["requestBody"] = {"required": False, "content": _json({})}
    params = _path_params(route.path)
    if params:
        op["parameters"] = params
    return op


def _regex(path: str) -> re.Pattern[str]:
    return re.compile(_PARAM.sub("[^/]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")))


def shadowed(route: Route, endpoints: Iterable[Endpoint]) -> bool:
    """Whether a core endpoint answers ``route``'s method and mount path first."""
    return any(
        e.method == route.method and _regex(e.path).fullmatch(route.mount_path) for e in endpoints
    )


def build_openapi(
    endpoints: Sequence[Endpoint], routes: Iterable[Route], *, version: str, url: str
) -> dict[str, Any]:
    """The whole document: core endpoints, then the plugin routes not shadowed by them."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    for route in routes:
        if not shadowed(route, endpoints):
            ops = paths.setdefault(route.mount_path, {})
            ops[route.method.lower()] = _plugin_operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Orrery kernel daemon",
            "version": version,
            "description": "Manage plugins, publish and stream events. Every operation except "
            "health and readiness needs 'Authorization: Bearer <token>' (orrery token).",
        },
        "servers": [{"url": url}] if url else [],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
