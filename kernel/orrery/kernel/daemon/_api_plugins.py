"""``/v1/plugins``: list, inspect, enable, disable, reload, configure, install, uninstall."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web
from orrery.kernel import env_variable
from orrery.kernel.errors import PluginNotFound
from orrery.kernel.plugins import PluginState
from orrery.sdk import ConfigError, PluginError

from ._describe import plugin_dict
from ._endpoints import Endpoint, Param
from ._http import KERNEL, authorize, json_response, parse_body
from ._models import (
    ConfigBody,
    ConfigSourceOut,
    InstallOut,
    InstallRequest,
    PluginOut,
    RescanOut,
)
from .errors import HttpError

__all__ = ["PLUGIN_ENDPOINTS", "kernel_errors"]

log = logging.getLogger("orrery.kernel.daemon")
_NAME = Param("name", "path", "Plugin name, as listed by GET /v1/plugins", required=True)
_STATE = Param(
    "state",
    "query",
    "Only plugins in this state (several separated by commas): "
    + ", ".join(str(s) for s in PluginState),
)


@contextmanager
def kernel_errors() -> Iterator[None]:
    """Map the kernel's errors on a plugin operation to 4xx answers naming what to fix."""
    try:
        yield
    except PluginNotFound as e:
        raise HttpError(404, str(e), field="name") from e
    except ConfigError as e:
        raise HttpError(422, str(e), field=e.path) from e
    except PluginError as e:
        # Rejected reloads and the like: the request was fine, the plugin's state is not.
        raise HttpError(409, str(e)) from e


_STATES = tuple(str(s) for s in PluginState)


def _plugins(request: web.Request, states: frozenset[str] | None = None) -> list[dict[str, Any]]:
    kernel = request.app[KERNEL]
    return [
        plugin_dict(kernel.manager.runtime(name))
        for name, info in sorted(kernel.plugins.items())
        if states is None or str(info.state) in states
    ]


def _state_filter(request: web.Request) -> frozenset[str] | None:
    """``?state=active``, ``?state=failed,stopped`` or ``?state=a&state=b``; an unknown
    state is a 422 listing the valid ones."""
    given = request.query.getall("state", [])
    if not given:
        return None
    raw = ",".join(given)
    wanted = frozenset(s.strip().lower() for s in raw.split(",") if s.strip())
    unknown = sorted(wanted - set(_STATES))
    if unknown or not wanted:
        raise HttpError(
            422,
            f"unknown plugin state {', '.join(unknown) or repr(raw)}; use one of: "
            f"{', '.join(_STATES)} (several separated by commas)",
            field="state",
        )
    return wanted


def _name(request: web.Request) -> str:
    return request.match_info["name"]


async def list_plugins(request: web.Request) -> web.Response:
    return json_response(_plugins(request, _state_filter(request)))


async def get_plugin(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    with kernel_errors():
        rt = kernel.manager.runtime(_name(request))
        _ = kernel.plugins  # reading it refreshes the sandbox details in rt.info
    return json_response(plugin_dict(rt))


async def _lifecycle(request: web.Request, operation: str) -> web.Response:
    name = _name(request)
    kernel = request.app[KERNEL]
    with kernel_errors():
        kernel.manager.runtime(name)  # 404 before asking for permission on nothing
        await authorize(request, f"plugins.{operation}", name)
        await getattr(kernel, operation)(name)
    return json_response(plugin_dict(kernel.manager.runtime(name)))


async def enable_plugin(request: web.Request) -> web.Response:
    return await _lifecycle(request, "enable")


async def disable_plugin(request: web.Request) -> web.Response:
    return await _lifecycle(request, "disable")


async def reload_plugin(request: web.Request) -> web.Response:
    return await _lifecycle(request, "reload")


async def get_config(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    with kernel_errors():
        return json_response(kernel.plugin_config(_name(request)))


async def get_config_sources(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    name = _name(request)
    with kernel_errors():
        values = kernel.plugin_config(name)
        sources = kernel.plugin_config_sources(name)
    body = {
        key: {"value": value, "source": sources.get(key, "default")}
        for key, value in sorted(values.items())
    }
    for key, entry in body.items():
        if entry["source"] == "environment":
            entry["variable"] = env_variable(f"plugins.{name}.{key}")
    return json_response(body)


async def put_config(request: web.Request) -> web.Response:
    name = _name(request)
    kernel = request.app[KERNEL]
    with kernel_errors():
        kernel.manager.runtime(name)
        body = await parse_body(request, ConfigBody)
        await authorize(request, "plugins.configure", name)
        await kernel.configure(name, body.root)
        return json_response(kernel.plugin_config(name))


def _collector(what: str, output: list[str]) -> Callable[[str], None]:
    def collect(line: str) -> None:
        output.append(line.rstrip("\n"))
        log.info("%s: %s", what, line.rstrip())

    return collect


def _changes(result: dict[str, list[str]]) -> dict[str, list[str]]:
    return {str(k): [str(n) for n in v] for k, v in result.items()}


async def install_plugin(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    body = await parse_body(request, InstallRequest)
    await authorize(request, "plugins.install", body.spec)
    output: list[str] = []
    with kernel_errors():
        changes = await kernel.install(body.spec, _collector(f"install {body.spec}", output))
    return json_response(
        {"output": output, "changes": _changes(changes), "plugins": _plugins(request)}
    )


async def uninstall_plugin(request: web.Request) -> web.Response:
    name = _name(request)
    kernel = request.app[KERNEL]
    output: list[str] = []
    with kernel_errors():
        kernel.manager.runtime(name)
        await authorize(request, "plugins.uninstall", name)
        changes = await kernel.uninstall(name, _collector(f"uninstall {name}", output))
    return json_response(
        {"output": output, "changes": _changes(changes), "plugins": _plugins(request)}
    )


async def rescan_plugins(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    await authorize(request, "plugins.rescan", "*")
    with kernel_errors():
        changes = await kernel.rescan()
    return json_response({"changes": _changes(changes), "plugins": _plugins(request)})


_TAG = "plugins"
PLUGIN_ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/plugins",
        list_plugins,
        "listPlugins",
        "List every plugin (or those in the given states)",
        _TAG,
        response=list[PluginOut],
        params=(_STATE,),
        errors=(422,),
    ),
    Endpoint(
        "POST",
        "/v1/plugins",
        install_plugin,
        "installPlugin",
        "pip-install a plugin distribution, then rescan",
        _TAG,
        response=InstallOut,
        body=InstallRequest,
        errors=(403, 409),
        action="plugins.install",
    ),
    Endpoint(
        "POST",
        "/v1/plugins/rescan",
        rescan_plugins,
        "rescanPlugins",
        "Rescan entry points for installed or upgraded plugins",
        _TAG,
        response=RescanOut,
        errors=(403, 409),
        action="plugins.rescan",
    ),
    Endpoint(
        "GET",
        "/v1/plugins/{name}",
        get_plugin,
        "getPlugin",
        "One plugin",
        _TAG,
        response=PluginOut,
        params=(_NAME,),
        errors=(404,),
    ),
    Endpoint(
        "DELETE",
        "/v1/plugins/{name}",
        uninstall_plugin,
        "uninstallPlugin",
        "Stop a plugin and pip-uninstall its distribution, then rescan",
        _TAG,
        response=InstallOut,
        params=(_NAME,),
        errors=(403, 404, 409),
        action="plugins.uninstall",
    ),
    Endpoint(
        "POST",
        "/v1/plugins/{name}/enable",
        enable_plugin,
        "enablePlugin",
        "Enable and start a plugin (kept across restarts)",
        _TAG,
        response=PluginOut,
        params=(_NAME,),
        errors=(403, 404, 409),
        action="plugins.enable",
    ),
    Endpoint(
        "POST",
        "/v1/plugins/{name}/disable",
        disable_plugin,
        "disablePlugin",
        "Stop a plugin, dependents first, and keep it stopped",
        _TAG,
        response=PluginOut,
        params=(_NAME,),
        errors=(403, 404, 409),
        action="plugins.disable",
    ),
    Endpoint(
        "POST",
        "/v1/plugins/{name}/reload",
        reload_plugin,
        "reloadPlugin",
        "Load a plugin's code afresh and swap it in; the old version keeps serving "
        "if the new one fails (409)",
        _TAG,
        response=PluginOut,
        params=(_NAME,),
        errors=(403, 404, 409),
        action="plugins.reload",
    ),
    Endpoint(
        "GET",
        "/v1/plugins/{name}/config",
        get_config,
        "getPluginConfig",
        "A plugin's effective configuration",
        _TAG,
        response=dict[str, Any],
        params=(_NAME,),
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/plugins/{name}/config/sources",
        get_config_sources,
        "getPluginConfigSources",
        "Each effective configuration value and where it comes from",
        _TAG,
        response=dict[str, ConfigSourceOut],
        params=(_NAME,),
        errors=(404,),
        description="source is 'environment' (ORRERY_PLUGINS__... wins over everything), "
        "'runtime' (set through the API; dropped when the file changes that key), 'file' "
        "(orrery.toml; 'config' for a mapping given to an embedded Kernel) or 'default'.",
    ),
    Endpoint(
        "PUT",
        "/v1/plugins/{name}/config",
        put_config,
        "putPluginConfig",
        "Replace a plugin's configuration: validated, applied (restarting it), persisted",
        _TAG,
        response=dict[str, Any],
        body=ConfigBody,
        params=(_NAME,),
        errors=(403, 404, 409),
        action="plugins.configure",
    ),
)
