"""Talking to a running daemon: where it is, its token, JSON requests and the SSE stream."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from orrery.kernel.daemon import (
    ApiError,
    DaemonNotRunning,
    read_daemon_file,
    read_token,
)
from rich.console import Console
from rich.table import Table

__all__ = [
    "ClientStateDirOpt",
    "DaemonClient",
    "JsonOpt",
    "TokenOpt",
    "UrlOpt",
    "connect",
    "plugin_table",
    "print_json",
]

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="ORRERY_URL", help="Daemon URL (default: from the state dir)."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="ORRERY_TOKEN", help="API token (default: <state-dir>/token)."),
]
ClientStateDirOpt = Annotated[
    Path,
    typer.Option("--state-dir", help="State directory of the daemon to talk to."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

_STATE_STYLE = {"active": "green", "resolved": "cyan", "failed": "bold red", "stopped": "yellow"}
# Loopback requests must not detour through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class DaemonClient:
    """A small synchronous client of the daemon's HTTP API (stdlib only: CLI start-up
    stays fast)."""

    url: str
    token: str
    timeout: float = 300.0

    def _request(self, method: str, path: str, body: Any = None) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        return urllib.request.Request(self.url + path, data=data, method=method, headers=headers)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; the JSON answer, or `ApiError` / `DaemonNotRunning`."""
        request = self._request(method, path, body)
        try:
            with _opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raise _api_error(e) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            reason = getattr(e, "reason", e)
            raise DaemonNotRunning(
                f"cannot reach the daemon at {self.url} ({reason}); start it with "
                f"'orrery daemon' or pass --url",
                url=self.url,
            ) from e
        return json.loads(raw) if raw else None

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


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def styled_state(state: str) -> str:
    style = _STATE_STYLE.get(state, "")
    return f"[{style}]{state}[/]" if style else state


def plugin_table(plugins: list[dict[str, Any]], title: str | None = None) -> None:
    """The plugin table every command prints: name, version, state, source, error."""
    n = len(plugins)
    table = Table(title=title or f"{n} plugin{'s' if n != 1 else ''}")
    for column in ("name", "version", "state", "source", "error"):
        table.add_column(column, overflow="fold")
    for p in plugins:
        table.add_row(
            p["name"], p["version"], styled_state(str(p["state"])), p["source"], p["error"] or ""
        )
    Console().print(table)
