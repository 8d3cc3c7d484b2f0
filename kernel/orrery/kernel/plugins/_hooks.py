"""Calling hooks: the one place where async hook implementations are awaited."""

from __future__ import annotations

import asyncio
import inspect
import types
from typing import Any

import pluggy
from orrery.kernel.errors import HookTimeout, PluginError
from orrery.sdk import hookspecs
from orrery.sdk.wire import PROJECT_NAME

__all__ = [
    "NOT_IMPLEMENTED",
    "HookRelay",
    "await_hook_result",
    "call_plugin_hook",
    "new_pluggy_manager",
]

NOT_IMPLEMENTED: Any = type(
    "NotImplementedHook", (), {"__repr__": lambda self: "NOT_IMPLEMENTED"}
)()
# Result types already seen not to be awaitable. Broadcasting is hot (metrics, health,
# authorization), and inspect.isawaitable on every result costs more than pluggy itself.
# Generators are never cached: only some of them (legacy coroutines) are awaitable.
_PLAIN_TYPES: set[type] = {type(None), dict, list, tuple, str, int, float, bool}


def _is_awaitable(result: Any) -> bool:
    kind = type(result)
    if kind in _PLAIN_TYPES:
        return False
    if inspect.isawaitable(result):
        return True
    if kind is not types.GeneratorType:
        _PLAIN_TYPES.add(kind)
    return False


def new_pluggy_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


async def await_hook_result(result: Any, *, plugin: str, hook: str, timeout: float) -> Any:
    """Await ``result`` if a hook returned an awaitable, bounded by ``timeout``."""
    if not _is_awaitable(result):
        return result
    try:
        async with asyncio.timeout(timeout) as scope:
            return await result
    except TimeoutError as e:
        if scope.expired():
            raise HookTimeout(plugin, hook, timeout) from e
        raise


async def call_plugin_hook(
    pm: pluggy.PluginManager,
    instance: object,
    hook: str,
    *,
    plugin: str,
    timeout: float,
    **kwargs: Any,
) -> Any:
    """Call ``hook`` on one registered plugin instance only.

    Returns `NOT_IMPLEMENTED` when the plugin has no implementation. Errors come out as
    `PluginError` (or `HookTimeout`) naming the plugin and the hook.
    """
    caller = getattr(pm.hook, hook)
    for impl in caller.get_hookimpls():
        if impl.plugin is instance:
            break
    else:
        return NOT_IMPLEMENTED
    try:
        result = impl.function(*[kwargs[arg] for arg in impl.argnames])
        return await await_hook_result(result, plugin=plugin, hook=hook, timeout=timeout)
    except (HookTimeout, asyncio.CancelledError):
        raise
    except Exception as e:
        raise PluginError(
            f"plugin {plugin!r}: {hook} raised {type(e).__name__}: {e}", plugin=plugin
        ) from e


class HookRelay:
    """Hooks the kernel asks of every active plugin at once (``k.hooks``)."""

    def __init__(self, pm: pluggy.PluginManager, timeout: float) -> None:
        self._pm = pm
        self._timeout = timeout

    async def authorize(self, principal: str, action: str, resource: str) -> bool:
        """Ask ``orrery_authorize``: the first non-None answer decides; allowed if none answers.

        pluggy's firstresult would stop at the first coroutine, so the implementations are
        walked here in pluggy's call order and each awaited until one decides.
        """
        args = {"principal": principal, "action": action, "resource": resource}
        for impl in reversed(self._pm.hook.orrery_authorize.get_hookimpls()):
            result = impl.function(*[args[a] for a in impl.argnames])
            if type(result) not in _PLAIN_TYPES and _is_awaitable(result):
                # Looked up only here: naming the plugin costs more than a sync answer.
                name = self._pm.get_name(impl.plugin) or "?"
                result = await await_hook_result(
                    result, plugin=name, hook="orrery_authorize", timeout=self._timeout
                )
            if result is not None:
                return bool(result)
        return True
