"""Errors of the daemon and of the CLI client that talks to it."""

from __future__ import annotations

from orrery.kernel.errors import KernelError, StateDirLocked
from orrery.sdk.errors import ApiError, DaemonNotRunning, UsageError

__all__ = [
    "ApiError",
    "CannotListen",
    "DaemonError",
    "DaemonLocked",
    "DaemonNotRunning",
    "HttpError",
]


class DaemonError(KernelError):
    """The daemon could not start, serve or stop as asked."""


class CannotListen(DaemonError, UsageError):
    """The daemon's address is taken or not allowed: the command needs another --port
    or --host (exit code 2)."""


class DaemonLocked(DaemonError, StateDirLocked):
    """Another kernel (a daemon, ``orrery run``, an embedded one) holds the lock on the
    same state directory; ``pid`` names it."""


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
