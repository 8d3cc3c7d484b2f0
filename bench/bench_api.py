"""The daemon's HTTP API beside an aiohttp hello-world app, measured in the same run.

Both servers run as their own processes; the load comes from a third (wrk when it is
installed, otherwise an aiohttp client in a subprocess), so no side shares an event loop.

Keys: ``api.hello_per_s`` (the floor: plain aiohttp answering JSON), ``api.get_per_s``
(``GET /v1/plugins``, bearer token checked), ``api.get_ratio_vs_hello`` (target >= 0.5),
``api.events_per_s`` (``POST /v1/events`` with auth, target >= 5000).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DURATION = float(os.environ.get("ORRERY_BENCH_API_SECONDS", "5"))
CONNECTIONS = 32
ROUNDS = 2
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

HELLO_APP = """
import sys
from aiohttp import web

async def hello(request):
    return web.json_response({"hello": "world"})

app = web.Application()
app.router.add_get("/hello", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

# The fallback load generator: keeps CONNECTIONS requests in flight for DURATION seconds.
CLIENT = """
import asyncio, json, sys, time
import aiohttp

url, method, token, body, seconds, conns = sys.argv[1:7]
seconds, conns = float(seconds), int(conns)
headers = {"Content-Type": "application/json"}
if token:
    headers["Authorization"] = "Bearer " + token
data = body.encode() if body else None

async def main():
    done = bad = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns)) as s:
        async def worker():
            nonlocal done, bad
            while time.perf_counter() < deadline:
                async with s.request(method, url, data=data, headers=headers) as r:
                    await r.read()
                    done += 1
                    bad += r.status >= 300
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        elapsed = time.perf_counter() - start
    print(json.dumps({"per_s": done / elapsed, "bad": bad}))

asyncio.run(main())
"""

WRK_POST = """
wrk.method = "POST"
wrk.body = '{"topic": "bench.api", "data": {"n": 1, "who": "bench"}}'
wrk.headers["Content-Type"] = "application/json"
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with _opener.open(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def _load(url: str, method: str, token: str | None, body: str | None, scratch: Path) -> float:
    """Requests per second of ``method url``; raises if any answer was not 2xx."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        cmd = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(DURATION))}s", "--latency"]
        if token:
            cmd += ["-H", f"Authorization: Bearer {token}"]
        if body is not None:
            script = scratch / "post.lua"
            script.write_text(WRK_POST)
            cmd += ["-s", str(script)]
        out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
        if "Non-2xx" in out:
            raise RuntimeError(f"non-2xx answers from {url}:\n{out}")
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if match is None:
            raise RuntimeError(f"cannot read wrk's output:\n{out}")
        return float(match.group(1))
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, url, method, token or "", body or "", str(DURATION),
         str(CONNECTIONS)],
        capture_output=True, text=True, check=True,
    ).stdout
    result = json.loads(out)
    if result["bad"]:
        raise RuntimeError(f"{result['bad']} non-2xx answers from {url}")
    return float(result["per_s"])


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="orrery-bench-api-") as tmp:
        scratch = Path(tmp)
        state = scratch / "state"
        hello_port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORRERY_")}
        hello = subprocess.Popen(
            [sys.executable, "-c", HELLO_APP, str(hello_port)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        daemon = subprocess.Popen(
            [sys.executable, "-m", "orrery.kernel.cli", "daemon", "--port", "0",
             "--state-dir", str(state), "--no-entry-points", "--log-level", "warning",
             "--plugins-dir", str(REPO / "examples" / "plugins")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while not (state / "daemon.json").exists():
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the daemon did not start")
                time.sleep(0.05)
            api = json.loads((state / "daemon.json").read_text())["url"]
            token = (state / "token").read_text().strip()
            hello_url = f"http://127.0.0.1:{hello_port}/hello"
            _wait_http(hello_url)
            _wait_http(api + "/v1/health")
            # Rounds interleave the servers so drift on a shared machine hits both alike.
            hello_best = get_best = events_best = 0.0
            for _ in range(ROUNDS):
                hello_best = max(hello_best, _load(hello_url, "GET", None, None, scratch))
                get_best = max(get_best, _load(api + "/v1/plugins", "GET", token, None, scratch))
                events_best = max(
                    events_best,
                    _load(api + "/v1/events", "POST", token,
                          '{"topic": "bench.api", "data": {"n": 1, "who": "bench"}}', scratch),
                )
        finally:
            for proc in (daemon, hello):
                proc.send_signal(signal.SIGTERM)
            for proc in (daemon, hello):
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    ratio = get_best / hello_best
    tool = "wrk" if shutil.which("wrk") else "aiohttp client"
    print(f"HTTP API, {CONNECTIONS} connections, {DURATION:g}s x {ROUNDS} rounds, load by {tool}")
    print(f"  aiohttp hello world      {hello_best:10.0f} req/s")
    print(f"  GET /v1/plugins (auth)   {get_best:10.0f} req/s   ratio {ratio:.2f}")
    print(f"  POST /v1/events (auth)   {events_best:10.0f} events/s")
    return {
        "api.hello_per_s": round(hello_best, 1),
        "api.get_per_s": round(get_best, 1),
        "api.get_ratio_vs_hello": round(ratio, 3),
        "api.events_per_s": round(events_best, 1),
    }


if __name__ == "__main__":
    run()
