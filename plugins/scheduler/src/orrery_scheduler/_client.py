"""A small HTTP client for the scheduler routes of a running daemon (standard library
only, so the CLI works wherever Orrery is installed)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["ClientError", "SchedulerClient", "resolve"]

#: Where the daemon mounts this plugin's routes.
BASE_PATH = "/v1/plugins/scheduler"


class ClientError(Exception):
    """The daemon could not be reached or answered with an error; the message says
    what to do."""


def resolve(url: str | None, token: str | None, state_dir: Path) -> tuple[str, str | None]:
    """The daemon URL and token: flags first, then ``daemon.json`` and ``token`` in the
    state directory."""
    if url is None:
        info = state_dir / "daemon.json"
        try:
            url = str(json.loads(info.read_text(encoding="utf-8"))["url"])
        except FileNotFoundError:
            raise ClientError(
                f"no running daemon found ({info} does not exist); start one with "
                f"'orrery daemon --state-dir {state_dir}' or pass --url"
            ) from None
        except (ValueError, KeyError, TypeError) as e:
            raise ClientError(f"{info} is not a valid daemon file ({e}); pass --url") from e
    if token is None:
        try:
            token = (state_dir / "token").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            token = None
    return url.rstrip("/"), token


class SchedulerClient:
    """JSON requests to ``<url>/v1/plugins/scheduler/...`` with a bearer token."""

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer. Raises `ClientError`."""
        target = f"{self.url}{BASE_PATH}{path}"
        if query:
            clean = {k: v for k, v in query.items() if v is not None}
            target += "?" + urllib.parse.urlencode(clean)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(target, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            raise ClientError(_http_error(e)) from e
        except urllib.error.URLError as e:
            raise ClientError(
                f"cannot reach the daemon at {self.url} ({e.reason}); is 'orrery daemon' "
                f"running? pass --url or --state-dir"
            ) from e
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            error = answer["error"]
            raise ClientError(str(error.get("message", error)))
        return answer


def _http_error(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read() or b"{}")
    except ValueError:
        detail = {}
    message = detail.get("message") or detail.get("error") or error.reason
    if isinstance(message, dict):
        message = message.get("message", message)
    if error.code == 401:
        return f"the daemon refused the token ({message}); pass --token or --state-dir"
    if error.code == 404 and "no plugin named" in str(message):
        return f"{message} (is the scheduler plugin enabled? 'orrery plugins ls')"
    return f"daemon answered {error.code}: {message}"
