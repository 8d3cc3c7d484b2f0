"""Errors raised by the sandbox host.

Every error keeps the plugin name (``plugin``) and says what to do about it.
"""

from __future__ import annotations

from orrery.sdk.errors import PluginError

__all__ = [
    "CircuitOpen",
    "HookTimeout",
    "LayerUnavailable",
    "RemoteError",
    "SandboxError",
    "WorkerCrashed",
    "WorkerStartError",
]


class SandboxError(PluginError):
    """Base class of sandbox errors; a sandboxed plugin failed or could not run."""


class LayerUnavailable(SandboxError):
    """An isolation layer listed in ``require`` is not available on this host."""

    def __init__(self, plugin: str, layer: str, reason: str) -> None:
        super().__init__(
            f"sandboxed plugin {plugin!r} requires the {layer!r} isolation layer, but "
            f"{reason}; install or enable it, or remove {layer!r} from the plugin's "
            f"sandbox require list",
            plugin=plugin,
        )
        self.layer = layer
        self.reason = reason


class WorkerStartError(SandboxError):
    """The worker process could not be started, or could not load the plugin."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(f"sandboxed plugin {plugin!r} did not start: {reason}", plugin=plugin)
        self.reason = reason


class WorkerCrashed(SandboxError):
    """The worker process died while a call was in flight."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(
            f"the worker of sandboxed plugin {plugin!r} died: {reason}; it is restarted "
            f"with backoff, check the plugin's log and limits",
            plugin=plugin,
        )
        self.reason = reason


class HookTimeout(SandboxError, TimeoutError):
    """A hook did not finish within ``hook_timeout``; the worker was killed."""

    def __init__(self, plugin: str, hook: str, timeout: float) -> None:
        super().__init__(
            f"hook {hook} of sandboxed plugin {plugin!r} did not finish within "
            f"{timeout:g}s, so its worker was killed; make the hook return sooner or raise "
            f"the plugin's hook_timeout",
            plugin=plugin,
        )
        self.hook = hook
        self.timeout = timeout


class RemoteError(SandboxError):
    """Plugin code inside the worker raised; ``remote_type`` names the exception class."""

    def __init__(self, plugin: str, remote_type: str, message: str, traceback: str = "") -> None:
        super().__init__(
            f"sandboxed plugin {plugin!r} raised {remote_type}: {message}", plugin=plugin
        )
        self.remote_type = remote_type
        self.remote_message = message
        self.remote_traceback = traceback


class CircuitOpen(SandboxError):
    """The worker crashed too often within the restart window; the plugin is failed."""

    def __init__(self, plugin: str, crashes: int, window_s: float, last: str) -> None:
        super().__init__(
            f"sandboxed plugin {plugin!r} crashed {crashes} times within {window_s:g}s "
            f"(last: {last}); it is failed until reloaded: fix the plugin or raise its limits",
            plugin=plugin,
        )
        self.crashes = crashes
        self.window_s = window_s
        self.last = last
