"""Errors raised by the kernel. All derive from `orrery.sdk.errors.OrreryError`."""

from __future__ import annotations

from pathlib import Path

from orrery.sdk.errors import ConfigError, OrreryError, PluginError, UsageError

__all__ = [
    "ConfigError",
    "DependencyError",
    "HookTimeout",
    "KernelError",
    "PluginError",
    "PluginLoadError",
    "PluginNotFound",
    "PluginValidationError",
    "StateDirLocked",
]


class KernelError(OrreryError):
    """The kernel could not do what was asked of it."""


class PluginLoadError(PluginError):
    """A plugin's module could not be imported or holds no usable Plugin class."""


class PluginValidationError(PluginError):
    """A Plugin class declares something invalid (name, specifier, Config, permission, hook)."""


class DependencyError(PluginError):
    """A plugin's ``requires`` cannot be met: missing, incompatible, failed or cyclic."""

    def __init__(self, message: str, *, plugin: str, chain: tuple[str, ...] = ()) -> None:
        super().__init__(message, plugin=plugin)
        self.chain = chain


class HookTimeout(PluginError, TimeoutError):
    """A plugin hook did not finish within its timeout."""

    def __init__(self, plugin: str, hook: str, timeout: float) -> None:
        super().__init__(
            f"plugin {plugin!r}: {hook} did not finish within {timeout:g}s; make it return "
            f"sooner (move long work into ctx.spawn) or raise start_timeout in "
            f"[plugins.{plugin}]",
            plugin=plugin,
        )
        self.hook = hook
        self.timeout = timeout


class PluginNotFound(KernelError, LookupError):
    """No plugin of that name is known to the kernel."""

    def __init__(self, name: str, known: list[str]) -> None:
        hint = f" (known: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"no plugin named {name!r}{hint}; run 'orrery plugins ls' to list them")
        self.name = name


class StateDirLocked(KernelError, UsageError):
    """Another kernel (a daemon, ``orrery run`` or an embedded one) uses the state directory.

    ``pid`` is the process that took the lock; ``inherited`` says it has exited and a
    process that inherited the lock from it (a child) still holds it.
    """

    def __init__(self, state_dir: Path, pid: int | None, *, inherited: bool = False) -> None:
        if inherited:
            lock = state_dir / "daemon.lock"
            message = (
                f"state directory {state_dir} is locked by a process that inherited the lock "
                f"from pid {pid}, which has exited; find it with 'fuser {lock}' and stop it"
            )
        else:
            who = f"pid {pid}" if pid is not None else "a process whose pid is unknown"
            stop = f"stop it (kill {pid})" if pid is not None else "stop it"
            message = (
                f"another orrery kernel ({who}) is already using state directory {state_dir}; "
                f"{stop}, or give this one a different state directory (--state-dir, or "
                f"Kernel(state_dir=...))"
            )
        super().__init__(message)
        self.state_dir = state_dir
        self.pid = pid
        self.inherited = inherited
