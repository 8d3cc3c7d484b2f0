"""The scheduler routes of a running daemon, over `orrery.sdk.client` (standard library
only, so the CLI works wherever Orrery is installed)."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from orrery.sdk import OrreryError
from orrery.sdk.client import (
    ApiError,
    DaemonClient,
    DaemonNotRunning,
    read_daemon_file,
    read_token,
)

from .errors import ClientError, DaemonUnreachable

__all__ = ["ClientError", "DaemonUnreachable", "SchedulerClient", "resolve"]

#: Where the daemon mounts this plugin's routes.
BASE_PATH = "/v1/plugins/scheduler"


def resolve(url: str | None, token: str | None, state_dir: Path) -> tuple[str, str | None]:
    """The daemon URL and token: flags first, then ``daemon.json`` and ``token`` in the
    state directory."""
    if url is None:
        address = read_daemon_file(state_dir)
        if address is None:
            raise DaemonUnreachable(
                f"no running daemon found (no readable {state_dir / 'daemon.json'}); start "
                f"one with 'orrery daemon --state-dir {state_dir}' or pass --url"
            )
        url = address.url
    if token is None:
        try:
            token = read_token(state_dir)
        except OrreryError:
            token = None  # the daemon will answer 401, which says what to pass
    return url.rstrip("/"), token


class SchedulerClient:
    """JSON requests to ``<url>/v1/plugins/scheduler/...`` with a bearer token."""

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url
        self.token = token
        self._daemon = DaemonClient(url, token or "", timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer. Raises `ClientError`."""
        target = f"{BASE_PATH}{path}"
        if query:
            clean = {k: v for k, v in query.items() if v is not None}
            target += "?" + urllib.parse.urlencode(clean)
        try:
            answer = self._daemon.call(method, target, body)
        except ApiError as e:
            if e.status == 401:
                raise DaemonUnreachable(_http_error(e)) from e
            raise ClientError(_http_error(e)) from e
        except DaemonNotRunning as e:
            raise DaemonUnreachable(
                f"{e}; is 'orrery daemon' running? pass --url or --state-dir"
            ) from e
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            error = answer["error"]
            raise ClientError(str(error.get("message", error)))
        return answer


def _http_error(error: ApiError) -> str:
    if error.status == 401:
        return f"the daemon refused the token ({error.message}); pass --token or --state-dir"
    if error.status == 404 and "no plugin named" in error.message:
        return f"{error.message} (is the scheduler plugin enabled? 'orrery plugins ls')"
    return f"daemon answered {error.status}: {error.message}"
