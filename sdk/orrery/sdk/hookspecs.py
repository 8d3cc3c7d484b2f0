"""Hook specifications every Orrery plugin may implement.

pluggy calls hooks synchronously. An ``async def`` implementation returns a coroutine
that the kernel awaits in exactly one place, with a timeout. Hooks that take ``ctx`` are
called for one plugin at a time, with that plugin's own Context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._markers import hookspec

if TYPE_CHECKING:
    from ._context import Context

# -- lifecycle -------------------------------------------------------------------------


@hookspec
def orrery_start(ctx: Context) -> None:
    """Start the plugin: subscribe, provide services, spawn tasks.

    Awaited, with the plugin's start timeout. Called in dependency order: every plugin
    this one ``requires`` is already active. Raising (or timing out) marks the plugin
    ``failed`` and releases whatever it obtained through ``ctx``; the kernel goes on.
    """


@hookspec
def orrery_stop(ctx: Context) -> None:
    """Stop the plugin: flush and close what it owns outside ``ctx``.

    Awaited, with the plugin's stop timeout, in reverse dependency order. Subscriptions,
    services, spawned tasks and routes obtained through ``ctx`` are released by the
    kernel afterwards even if the plugin forgets.
    """


# -- hot reload ------------------------------------------------------------------------


@hookspec
def orrery_snapshot(ctx: Context) -> dict[str, Any]:
    """Return state to hand to the next version of this plugin across a hot reload.

    Awaited. Called on the old instance before it stops. The result should be plain
    data (JSON-able) so it can also cross a process boundary.
    """
    raise NotImplementedError  # a spec: never called itself


@hookspec
def orrery_restore(ctx: Context, state: dict[str, Any]) -> None:
    """Receive the state the previous version returned from `orrery_snapshot`.

    Awaited. Called on the new instance before `orrery_start` (which also finds the
    same dict in ``ctx.restored``).
    """


@hookspec
def orrery_handover(ctx: Context) -> dict[str, Any]:
    """Hand live objects (connections, caches, open handles) to the next version.

    Awaited. Called on the old instance right after `orrery_snapshot`, for in-process
    plugins only; the new instance finds the dict in ``ctx.handed_over`` (empty when
    nothing was handed over). Keep `orrery_snapshot` JSON-able and put what cannot be
    serialised here. A sandboxed plugin that implements this hook fails to start: its
    objects cannot cross the process boundary.
    """
    raise NotImplementedError  # a spec: never called itself


# -- operations ------------------------------------------------------------------------


@hookspec
def orrery_health(ctx: Context) -> dict[str, Any]:
    """Report health as a dict, e.g. ``{"ok": True, "queue": 3}``.

    Awaited with a short timeout; an exception or timeout reports the plugin unhealthy.
    """
    raise NotImplementedError  # a spec: never called itself


# -- security --------------------------------------------------------------------------


@hookspec(firstresult=True)
def orrery_authorize(principal: str, action: str, resource: str) -> bool | None:
    """Decide whether ``principal`` may perform ``action`` on ``resource``.

    firstresult: the first implementation returning non-None decides; ``None`` abstains.
    When every implementation abstains (or none exists) the action is allowed. May be
    async; the kernel awaits the deciding coroutine.
    """
    raise NotImplementedError  # a spec: never called itself
