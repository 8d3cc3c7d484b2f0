"""``harness.http(...)``: a plugin's routes served by the real daemon app on loopback.

The daemon's aiohttp application (auth, error mapping, plugin mounts) is built over the
harness's kernel on first use and listens on 127.0.0.1 on a free port; requests go over
real HTTP with the bearer token. aiohttp is imported here only, inside a test run.
"""

from __future__ import annotations

import json as jsonlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web
    from orrery.kernel import Kernel  # noqa: TID251 - typing only

__all__ = ["DaemonApp", "HttpResult"]


@dataclass(frozen=True)
class HttpResult:
    """One answer of the daemon: ``status``, ``text``, ``headers``, and `json()`."""

    status: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The body parsed as JSON; fails the test with the body when it is not JSON."""
        try:
            return jsonlib.loads(self.text)
        except ValueError:
            raise AssertionError(
                f"the answer ({self.status}) is not JSON: {self.text[:500]!r}"
            ) from None


class DaemonApp:
    """The daemon's app over ``kernel``, listening on loopback until `close`."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._token = secrets.token_urlsafe(16)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def _start(self) -> aiohttp.ClientSession:
        import aiohttp
        from aiohttp import web
        from orrery.kernel.daemon import DaemonSettings, build_app  # noqa: TID251 - lazy

        settings = DaemonSettings(token=self._token)
        runner = web.AppRunner(build_app(self._kernel, settings), handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = settings.url = f"http://{host}:{port}"
        # trust_env=False: loopback must not detour through a proxy from the environment.
        self._session = aiohttp.ClientSession(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self._token}"},
            trust_env=False,
        )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        session = self._session or await self._start()
        params = {k: _query_value(v) for k, v in (query or {}).items()}
        async with session.request(
            method.upper(),
            path,
            json=json,
            params=params or None,
            headers=dict(headers or {}),
        ) as response:
            text = await response.text()
            return HttpResult(response.status, text, dict(response.headers))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
