"""Errors of the daemon and of the CLI client that talks to it."""

from __future__ import annotations

from pathlib import Path

from orrery.kernel.errors import KernelError
from orrery.sdk.errors import ApiError, DaemonNotRunning

__all__ = ["ApiError", "DaemonError", "DaemonLocked", "DaemonNotRunning", "HttpError"]


class DaemonError(KernelError):
    """The daemon could not start, serve or stop as asked."""


class DaemonLocked(DaemonError):
    """Another daemon holds the lock on the same state directory."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "a process whose pid is unknown"
        stop = f"stop it (kill {pid})" if pid is not None else "stop it"
        super().__init__(
            f"another orrery daemon ({who}) is already using state directory {state_dir}; "
            f"{stop} or start this one with a different --state-dir"
        )
        self.state_dir = state_dir
        self.pid = pid


class HttpError(DaemonError):
    """Raised inside a request handler to answer with a JSON error.

    ``field`` names the offending request field (``topic``, ``plugins.x.greeting``...).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}
