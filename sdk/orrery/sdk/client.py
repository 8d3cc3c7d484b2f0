"""Talking to a running Orrery daemon from another process (stdlib only).

Plugins that add commands to the ``orrery`` CLI (entry-point group ``orrery.cli``) use
this to reach the daemon the same way the built-in commands do::

    from orrery.sdk.client import connect

    client = connect(Path(".orrery"), url=None, token=None)
    tasks = client.call("GET", "/v1/plugins/scheduler/tasks")

The daemon writes its URL to ``<state-dir>/daemon.json`` and its bearer token to
``<state-dir>/token`` (mode 0600). `find_state_dir` finds the daemon to talk to from
any directory (see `orrery.sdk.cli` for the options plugin commands share).
``client.text(...)`` returns a ``text/plain`` answer (CSV, Prometheus) as a string.
"""

from __future__ import annotations

import json
import logging
import stat
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._locate import (
    CONTEXT_FILE,
    DAEMON_FILE,
    DEFAULT_STATE_DIR,
    context_path,
    find_state_dir,
    forget_daemon,
    remember_daemon,
)
from .errors import ApiError, DaemonNotRunning, OrreryError, UsageError

__all__ = [
    "CONTEXT_FILE",
    "DAEMON_FILE",
    "DEFAULT_STATE_DIR",
    "TOKEN_FILE",
    "ApiError",
    "DaemonAddress",
    "DaemonClient",
    "DaemonNotRunning",
    "connect",
    "context_path",
    "find_state_dir",
    "forget_daemon",
    "read_daemon_file",
    "read_token",
    "remember_daemon",
]

TOKEN_FILE = "token"
log = logging.getLogger("orrery.client")


@dataclass(frozen=True)
class DaemonAddress:
    """Where a running daemon listens, as written to ``daemon.json``."""

    url: str
    pid: int
    started_at: float


def read_daemon_file(state_dir: Path) -> DaemonAddress | None:
    """The address in ``daemon.json``, or None when there is no (readable) file."""
    try:
        data: Any = json.loads((state_dir / DAEMON_FILE).read_text(encoding="utf-8"))
        return DaemonAddress(str(data["url"]), int(data["pid"]), float(data["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_token(state_dir: Path) -> str:
    """Read the daemon's token, warning when the file is readable by others."""
    path = state_dir / TOKEN_FILE
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as e:
        raise UsageError(
            f"no API token at {path}; start the daemon once (orrery daemon --state-dir "
            f"{state_dir}) to create it, or pass --token"
        ) from e
    except OSError as e:
        raise OrreryError(f"cannot read the API token {path}: {e}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by other users; run 'chmod 600 %s'", path, path)
    if not token:
        raise OrreryError(f"the API token file {path} is empty; delete it and restart the daemon")
    return token


# Loopback requests must not detour through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class DaemonClient:
    """A small synchronous client of the daemon's HTTP API (stdlib only: CLI start-up
    stays fast)."""

    url: str
    token: str
    timeout: float = 300.0

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        accept: str = "application/json",
    ) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": accept}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if query:
            clean = {k: _query_value(v) for k, v in query.items() if v is not None}
            if clean:
                path += ("&" if "?" in path else "?") + urllib.parse.urlencode(clean)
        return urllib.request.Request(self.url + path, data=data, method=method, headers=headers)

    def _send(self, request: urllib.request.Request) -> bytes:
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                raw: bytes = response.read()
                return raw
        except urllib.error.HTTPError as e:
            raise _api_error(e) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise DaemonNotRunning(
                f"cannot reach the daemon at {self.url} ({reason}); start it with "
                f"'orrery daemon' or pass --url",
                url=self.url,
            ) from e

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one request; the JSON answer, or `ApiError` / `DaemonNotRunning`.

        ``query`` values are sent as text (None ones are left out, booleans as
        ``true``/``false``).
        """
        raw = self._send(self._request(method, path, body, query=query))
        return json.loads(raw) if raw else None

    def text(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        accept: str = "text/plain",
    ) -> str:
        """Like `call`, for an answer that is not JSON (CSV, Prometheus text): the body as
        text. Errors are the same `ApiError` / `DaemonNotRunning`."""
        raw = self._send(self._request(method, path, body, query=query, accept=accept))
        return raw.decode("utf-8", errors="replace")

    def stream(self, pattern: str, last_event_id: str | None = None) -> Iterator[tuple[str, Any]]:
        """Yield ``("event", cloudevent)`` and ``("notice", notice)`` from the SSE stream."""
        query = urllib.parse.urlencode({"pattern": pattern})
        request = self._request("GET", f"/v1/events/stream?{query}")
        request.add_header("Accept", "text/event-stream")
        if last_event_id:
            request.add_header("Last-Event-ID", last_event_id)
        try:
            response = _opener.open(request, timeout=None)
        except urllib.error.HTTPError as e:
            raise _api_error(e) from None
        except (urllib.error.URLError, ConnectionError) as e:
            raise DaemonNotRunning(
                f"cannot reach the daemon at {self.url} ({getattr(e, 'reason', e)})", url=self.url
            ) from e
        with response:
            kind, data = "event", ""
            for raw in response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line:
                    if data:
                        yield ("notice" if kind == "notice" else "event"), json.loads(data)
                    kind, data = "event", ""
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _api_error(e: urllib.error.HTTPError) -> ApiError:
    try:
        body = json.loads(e.read() or b"{}")
        return ApiError(e.code, str(body.get("error") or e.reason), field=body.get("field"))
    except (ValueError, AttributeError):
        return ApiError(e.code, str(e.reason))


def connect(state_dir: Path, url: str | None, token: str | None) -> DaemonClient:
    """A client for the daemon named by ``--url``/``--token`` or by the state dir."""
    if url is None:
        address = read_daemon_file(state_dir)
        if address is None:
            raise DaemonNotRunning(
                f"no daemon is running for state directory {state_dir} (no "
                f"{state_dir / 'daemon.json'}); start one with 'orrery daemon --state-dir "
                f"{state_dir}' or pass --url"
            )
        url = address.url
    if token is None:
        token = read_token(state_dir)
    return DaemonClient(url.rstrip("/"), token)
