"""A real daemon process SIGKILLed right after its k-th journal append of a run, for
every k of a workflow with a parallel branch, an approval and a compensation path. After
a restart on the same state directory every run reaches a terminal state, and no step
that had completed before the kill is called again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orrery.sdk import OrreryError, cli

pytestmark = pytest.mark.slow

WORKFLOW = """\
name: crashy
steps:
  - {id: a, call: svc.a, compensate: {call: svc.undo_a}}
  - {id: b, call: svc.b, needs: [a], compensate: {call: svc.undo_b}}
  - {id: c, call: svc.c, needs: [a], compensate: {call: svc.undo_c}}
  - id: approve
    needs: [b, c]
    approval: {timeout: 0.2, on_timeout: approve}
  - {id: d, call: svc.d, needs: [approve], compensate: {call: svc.undo_d}}
  - {id: e, call: svc.broken, needs: [d]}
"""

#: Counts the run appends and kills the process right after append WF_CRASH_AT.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from orrery.kernel.storage import EventJournal

    crash_at = int(os.environ.get("WF_CRASH_AT") or 0)
    original = EventJournal.append
    count = 0

    async def append(self, stream, events, expected_version=None):
        global count
        version = await original(self, stream, events, expected_version)
        if stream.startswith("run."):
            count += 1
            with open(os.environ["WF_APPENDS"], "a") as f:
                f.write(f"{count} {version}\\n")
            if count == crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return version

    EventJournal.append = append
    from orrery.kernel.cli import main
    sys.argv = ["orrery", "daemon", "--port", "0", "--state-dir", sys.argv[1],
                "--plugins-dir", sys.argv[2], "--config", sys.argv[3]]
    main()
    """
)

#: The service the workflow calls: records every call (pid, key) and answers; one
#: topic always fails so the run compensates.
PROBE = textwrap.dedent(
    """
    import os
    from orrery.sdk import Plugin, hookimpl

    class CrashProbe(Plugin):
        name = "crashprobe"

        @hookimpl
        async def orrery_start(self, ctx):
            async def handle(event):
                key = (event.headers or {}).get("orrery-idempotency-key", "")
                with open(os.environ["WF_CALLS"], "a") as f:
                    f.write(f"{os.getpid()} {event.type} {key}\\n")
                    f.flush()
                    os.fsync(f.fileno())
                if event.type == "svc.broken":
                    return {"error": "broken on purpose"}
                return {"ok": True}

            ctx.bus.subscribe("svc.>", handle)
    """
)


class Daemon:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.plugins = root / "plugins"
        self.flows = root / "flows"
        for folder in (self.plugins, self.flows):
            folder.mkdir(parents=True, exist_ok=True)
        (self.plugins / "crashprobe.py").write_text(PROBE)
        (self.flows / "crashy.yaml").write_text(WORKFLOW)
        self.config = root / "orrery.toml"
        self.config.write_text(
            f'[plugins.workflows]\ndirs = ["{self.flows}"]\npoll_interval = 0.05\n'
        )
        self.appends = root / "appends.log"
        self.calls = root / "calls.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, crash_at: int = 0) -> Any:
        (self.state / "daemon.json").unlink(missing_ok=True)
        env = {
            **os.environ,
            "WF_CRASH_AT": str(crash_at),
            "WF_APPENDS": str(self.appends),
            "WF_CALLS": str(self.calls),
        }
        args = [sys.executable, "-c", CHILD, str(self.state), str(self.plugins), str(self.config)]
        self.process = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (self.state / "daemon.json").exists():
                try:
                    client = cli.connect(state_dir=self.state, timeout=10)
                    if client.call("GET", "/v1/plugins/workflows/workflows"):
                        return client
                except OrreryError:
                    pass
            if self.process.poll() is not None:
                raise AssertionError("the daemon exited before it served")
            time.sleep(0.05)  # waiting for a separate process to come up
        raise AssertionError("the daemon did not come up within 60 s")

    def wait_killed(self, timeout: float = 30) -> bool:
        assert self.process is not None
        try:
            return self.process.wait(timeout) == -signal.SIGKILL
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def call_log(self) -> list[tuple[int, str, str]]:
        if not self.calls.exists():
            return []
        rows = [line.split(" ") for line in self.calls.read_text().splitlines()]
        return [(int(pid), topic, key) for pid, topic, key in rows]


def wait_terminal(client: Any, timeout: float = 60, where: str = "") -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.call("GET", "/v1/plugins/workflows/runs")
        if runs and all(
            r["status"] in ("completed", "failed", "compensated", "cancelled") for r in runs
        ):
            return list(runs)
        time.sleep(0.05)  # polling a separate process
    raise AssertionError(f"{where}: runs not terminal within {timeout} s: {runs}")


@pytest.fixture
def make_daemon(tmp_path: Path) -> Iterator[Any]:
    made: list[Daemon] = []

    def make(name: str) -> Daemon:
        made.append(Daemon(tmp_path / name))
        return made[-1]

    yield make
    for daemon in made:
        daemon.stop()


def start_run(client: Any) -> str | None:
    try:
        answer = client.call("POST", "/v1/plugins/workflows/runs", {"workflow": "crashy"})
    except OrreryError:
        return None  # killed while answering: the run is found after the restart
    return str(answer["id"])


def test_sigkill_at_every_journal_append(make_daemon: Any) -> None:
    clean = make_daemon("clean")
    client = clean.start()
    start_run(client)
    [run] = wait_terminal(client)
    assert run["status"] == "compensated"
    clean.stop()
    total = len(clean.appends.read_text().splitlines())
    assert total >= 10  # started, a, b/c, approval, d, e, four compensations ...
    kept = resumed = 0  # kills after which completed steps were kept / in-flight re-sent
    for k in range(1, total + 1):
        daemon = make_daemon(f"k{k}")
        client = daemon.start(crash_at=k)
        start_run(client)
        assert daemon.wait_killed(), f"the daemon was not killed at append {k}"
        first_pid = daemon.process.pid if daemon.process else 0
        kill_version = int(daemon.appends.read_text().splitlines()[-1].split()[1])
        client = daemon.start()
        [run] = wait_terminal(client, where=f"after a kill at append {k}")
        assert run["status"] == "compensated", (k, run)
        history = client.call("GET", f"/v1/plugins/workflows/runs/{run['id']}/events")
        before = [e for e in history if e["version"] <= kill_version]
        completed = {e["data"]["step"] for e in before if e["type"] == "step.completed"}
        undone = {e["data"]["step"] for e in before if e["type"] == "comp.completed"}
        calls = daemon.call_log()
        again = [(topic, key) for pid, topic, key in calls if pid != first_pid]
        for step in completed:
            assert (f"svc.{step}", f"{run['id']}:{step}") not in again, (k, step)
        for step in undone:
            assert (f"svc.undo_{step}", f"{run['id']}:{step}:compensate") not in again, (k, step)
        last = {e["data"]["step"]: e["type"] for e in before if e["type"].startswith("step.")}
        in_flight = {step for step, kind in last.items() if kind == "step.started"}
        for step in in_flight:
            # in flight at the kill: the restarted daemon sends it again, same key
            key = f"{run['id']}:{step}"
            assert any(k == key for _, k in again), (k, step, again)
        kept += bool(completed)
        resumed += bool(in_flight)
        per_key = {key: sum(1 for _, _, kk in calls if kk == key) for _, _, key in calls}
        assert all(n <= 2 for n in per_key.values()), (k, per_key)
        daemon.stop()
    # the checks above were not vacuous: some kills came after completed steps, and
    # some left a step in flight that the restarted daemon sent again
    assert kept > 0 and resumed > 0
