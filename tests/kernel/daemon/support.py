"""Helpers for tests that run ``orrery daemon`` as a real process (shared with the CLI tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orrery.kernel.daemon import read_daemon_file

__all__ = ["REPO", "DaemonProcess", "clean_env", "http_get", "no_proxy_opener", "spawn_daemon"]

REPO = Path(__file__).resolve().parents[3]
#: Loopback requests must not go through an HTTP proxy from the environment.
no_proxy_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def clean_env() -> dict[str, str]:
    """The environment for daemon processes, without the caller's ORRERY_ overrides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ORRERY_")}


def http_get(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    try:
        with no_proxy_opener.open(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, None


@dataclass
class DaemonProcess:
    """An ``orrery daemon`` subprocess; its log goes to a file (a pipe could fill up)."""

    proc: subprocess.Popen[bytes]
    state_dir: Path
    log_path: Path
    url: str = ""

    @property
    def token(self) -> str:
        return (self.state_dir / "token").read_text().strip()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll daemon.json and /v1/ready until both say so, or fail with the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log}")
            address = read_daemon_file(self.state_dir)
            if address is not None and address.pid == self.proc.pid:
                try:
                    status, body = http_get(address.url + "/v1/ready")
                except OSError:
                    status, body = 0, None
                if status == 200 and body["ready"]:
                    self.url = address.url
                    return
            time.sleep(0.05)  # polling interval of a readiness probe, not synchronisation
        raise AssertionError(f"daemon not ready within {timeout}s:\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def spawn_daemon(
    state_dir: Path, *args: str, log_path: Path | None = None, cwd: Path | None = None
) -> DaemonProcess:
    log_path = log_path or state_dir.with_name(state_dir.name + ".log")
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orrery.kernel.cli", "daemon", "--port", "0",
             "--state-dir", str(state_dir), "--no-entry-points", *args],
            stdout=log, stderr=log, env=clean_env(), cwd=cwd or state_dir.parent,
        )
    return DaemonProcess(proc, state_dir, log_path)


