"""SandboxHost: runs one plugin in a supervised, isolated worker process."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from orrery.sdk import Context

from ._bridge import Bridge
from ._launch import PluginTarget
from ._launcher import Launcher
from ._limits import LAYER_NAMES, SandboxLimits
from ._permissions import Permissions
from ._process import WorkerLost, WorkerProcess
from ._protocol import HOOK
from .errors import (
    CircuitOpen,
    HookTimeout,
    SandboxError,
    WorkerCrashed,
)

__all__ = ["HostState", "SandboxHost"]

log = logging.getLogger("orrery.sandbox")
#: Hooks the kernel may call through `SandboxHost.call_hook` (start() runs orrery_start).
HOOKS = frozenset({"orrery_health", "orrery_snapshot", "orrery_restore", "orrery_stop"})
FailedCallback = Callable[["SandboxHost", BaseException], Awaitable[None] | None]


class HostState(enum.StrEnum):
    """Where a sandboxed plugin is; compares equal to its lower-case name."""

    NEW = "new"
    STARTING = "starting"
    ACTIVE = "active"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class SandboxHost:
    """Runs plugin ``name`` out of process and proxies its ``ctx`` to the kernel's.

    ``ctx`` is the kernel-side Context of the plugin; every call the worker makes on
    it is checked against ``permissions``. ``on_failed(host, error)`` (sync or async)
    is called once when the circuit opens; `wait_failed` awaits the same moment.
    """

    def __init__(
        self,
        name: str,
        target: PluginTarget,
        ctx: Context,
        *,
        permissions: Permissions,
        limits: SandboxLimits,
        config: Mapping[str, Any],
        on_failed: FailedCallback | None = None,
        scratch_root: str | None = None,
    ) -> None:
        self.name = name
        self.target = target
        self.ctx = ctx
        self.permissions = permissions
        self.limits = limits
        self.config = dict(config)
        self.on_failed = on_failed
        self._scratch_root = scratch_root
        self._state = HostState.NEW
        self._state_changed = asyncio.Event()
        self.restarts = 0
        self.last_error: str | None = None
        self.bridge = self._new_bridge()
        self._launcher = Launcher(
            name, target, permissions, limits, self.config, scratch_root,
            # Test doubles of the kernel-side Context may predate node_id.
            node_id=getattr(ctx, "node_id", ""),
        )
        self._worker: WorkerProcess | None = None
        self._up = asyncio.Event()
        self._failed: asyncio.Future[BaseException] | None = None
        self._crashes: deque[float] = deque()
        self._event_crashes: deque[float] = deque()
        self._crashed_events: OrderedDict[str, None] = OrderedDict()
        self._supervisor: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._stopping = False
        self._callbacks: set[asyncio.Task[Any]] = set()

    def _new_bridge(self) -> Bridge:
        lim = self.limits
        return Bridge(
            self.name, self.ctx, self.permissions, max_frame=lim.max_frame_mb << 20,
            log_rate=lim.log_rate, log_burst=lim.log_burst, log_line_max=lim.log_line_max,
        )

    def __repr__(self) -> str:
        return f"<SandboxHost {self.name!r} {self.state.value} pid={self.pid}>"

    @property
    def state(self) -> HostState:
        """Where the plugin is: new, starting, active, restarting, stopping, stopped, failed."""
        return self._state

    @state.setter
    def state(self, value: HostState) -> None:
        self._state = value
        self._state_changed.set()
        self._state_changed = asyncio.Event()

    async def wait_state(self, *states: str, min_restarts: int = 0) -> HostState:
        """Wait until the state is one of ``states`` and ``restarts >= min_restarts``.

        Meant for supervisors and tests; wrap it in `asyncio.timeout`.
        """
        while not (self._state in states and self.restarts >= min_restarts):
            await self._state_changed.wait()
        return self._state

    @property
    def pid(self) -> int | None:
        """The worker's process id (bubblewrap's, when namespaces are on)."""
        return self._worker.pid if self._worker is not None and self._worker.alive else None

    @property
    def scratch(self) -> str | None:
        """The worker's writable scratch directory (kept across restarts)."""
        return self._launcher.scratch

    @property
    def layers(self) -> tuple[str, ...]:
        """Names of the isolation layers active for this plugin."""
        return self._launcher.layers

    @property
    def privileges(self) -> str:
        """What the worker runs as, e.g. ``uid 65534, no capabilities, no_new_privs``."""
        return self._launcher.privileges

    @property
    def layer_report(self) -> dict[str, str]:
        """Layer name -> how it is applied here, or why it is not."""
        return self._launcher.layer_report

    # -- public API ------------------------------------------------------------------

    async def start(self, *, state: dict[str, Any] | None = None) -> None:
        """Start the worker, load the plugin, validate its config and run orrery_start.

        ``state`` (from the previous version's snapshot) is handed to orrery_restore
        first. Raises `LayerUnavailable`, `orrery.sdk.ConfigError`, `WorkerStartError`
        or `RemoteError`; the host is then ``failed`` and holds nothing.
        """
        if self.state not in (HostState.NEW, HostState.STOPPED, HostState.FAILED):
            raise SandboxError(
                f"sandboxed plugin {self.name!r} is {self.state}; stop it before starting it",
                plugin=self.name,
            )
        self.state = HostState.STARTING
        self._crashes.clear()
        self._event_crashes.clear()
        self.bridge = self._new_bridge()
        self.bridge.exit_reason = self._launcher.exit_reason
        self._stopping = False
        self._failed = asyncio.get_running_loop().create_future()
        try:
            self._launcher.prepare()
            await self._launch(state)
        except BaseException as e:
            self.last_error = str(e)
            await self._release()
            self.state = HostState.FAILED
            raise
        self.state = HostState.ACTIVE
        active = ", ".join(f"{n} ({self.layer_report[n]})" for n in self.layers) or "none"
        missing = [f"{n} ({self.layer_report[n]})" for n in LAYER_NAMES if n not in self.layers]
        log.info(
            "sandboxed plugin %r started (pid %s) as %s; isolation layers active: %s%s",
            self.name, self.pid, self.privileges, active,
            f"; not active: {', '.join(missing)}" if missing else "",
        )
        if "namespaces" not in self.layers:
            log.error(
                "sandboxed plugin %r runs WITHOUT namespaces (%s): it shares the kernel's "
                "network, pid and mount namespaces, and only Landlock and seccomp (if "
                "active) stand between it and the host; install bubblewrap (bwrap), or "
                "add require = [\"namespaces\"] to [plugins.%s.sandbox] to refuse this",
                self.name, self.layer_report.get("namespaces"), self.name,
            )
        if missing:
            log.warning("sandboxed plugin %r runs without: %s", self.name, ", ".join(missing))
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name=f"orrery-sandbox-{self.name}"
        )

    async def call_hook(self, hook_name: str, **kwargs: Any) -> Any:
        """Run a hook in the worker, e.g. ``call_hook("orrery_restore", state=...)``.

        Waits (up to ``hook_timeout``) while the worker restarts. Raises `HookTimeout`
        (the worker is killed), `RemoteError`, `WorkerCrashed` or `CircuitOpen`.
        """
        if hook_name not in HOOKS:
            raise ValueError(f"{hook_name!r} is not a hook a sandboxed plugin runs; use one "
                             f"of {', '.join(sorted(HOOKS))}")
        timeout = self.limits.hook_timeout
        if self.state == HostState.RESTARTING:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), timeout)
        self._check_usable()
        worker = self._worker
        assert worker is not None
        try:
            fut = worker.request(HOOK, hook_name, kwargs)
        except WorkerLost as e:
            raise WorkerCrashed(self.name, self.last_error or "not running") from e
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            worker.kill(f"hook {hook_name} exceeded hook_timeout={timeout:g}s")
            raise HookTimeout(self.name, hook_name, timeout) from None
        except WorkerLost as e:
            await worker.wait(1.0)
            raise WorkerCrashed(self.name, self._launcher.exit_reason(worker)) from e

    async def handover(self) -> dict[str, Any]:
        """Live objects for the next version: none, they live in the worker (the worker
        refuses a plugin that implements ``orrery_handover``)."""
        return {}

    async def stop(self, *, drain: bool = False) -> None:
        """Run orrery_stop, end the worker and release everything it registered.

        With ``drain`` the plugin's subscriptions first stop taking new events and
        deliver what is queued for them (used when a new version takes over).
        """
        if self.state in (HostState.STOPPED, HostState.NEW):
            return
        was_active = self.state == HostState.ACTIVE
        self._stopping = True
        self.state = HostState.STOPPING
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        worker = self._worker
        if drain and was_active:
            try:
                async with asyncio.timeout(self.limits.hook_timeout):
                    await self.bridge.drain()
            except (TimeoutError, SandboxError) as e:
                log.warning("sandboxed plugin %r: draining failed: %r", self.name, e)
        if was_active and worker is not None and worker.alive:
            try:
                await self.call_hook("orrery_stop")
            except SandboxError as e:
                log.warning("sandboxed plugin %r: orrery_stop failed: %s", self.name, e)
        if worker is not None:
            worker.close_channel()
            if not await worker.wait(2.0):
                worker.kill("did not exit after stop")
                await worker.wait(5.0)
        await self._release()
        if self.state != HostState.FAILED:
            self.state = HostState.STOPPED

    async def replace(self, target: PluginTarget | None = None) -> SandboxHost:
        """Hot reload: start a new worker (with ``target``, default the same), then stop this one.

        The state from this instance's orrery_snapshot is handed to the new one's
        orrery_restore. If the new worker fails to start, this one keeps serving and the
        error is raised. Events queued for this instance are drained to it, not lost.
        """
        state = await self.call_hook("orrery_snapshot") if self.state == HostState.ACTIVE else None
        new = SandboxHost(
            self.name, target or self.target, self.ctx, permissions=self.permissions,
            limits=self.limits, config=self.config, on_failed=self.on_failed,
            scratch_root=self._scratch_root,
        )
        await new.start(state=state)
        await self.stop(drain=True)
        return new

    def kill(self, reason: str = "killed on request") -> None:
        """Kill the current worker now; the supervisor restarts it like any crash."""
        if self._worker is not None:
            self._worker.kill(reason)

    async def wait_failed(self) -> BaseException:
        """Wait until the circuit opens; returns the `CircuitOpen` error."""
        assert self._failed is not None, "start() the host first"
        return await asyncio.shield(self._failed)

    # -- one worker incarnation --------------------------------------------------------

    async def _launch(self, state: dict[str, Any] | None) -> None:
        """Start a worker and the plugin in it; on failure the worker is dead."""
        worker = self._launcher.new_worker(self.bridge)
        self._worker = worker
        self.bridge.attach(worker)
        await self._launcher.start(worker, state)
        self.bridge.started()
        self._up.set()
        if self.limits.ping_interval > 0:
            self._pinger = asyncio.get_running_loop().create_task(self._ping(worker))

    # -- supervision -----------------------------------------------------------------

    async def _ping(self, worker: WorkerProcess) -> None:
        lim = self.limits
        while worker.alive:
            await asyncio.sleep(lim.ping_interval)
            if not await worker.ping(lim.hook_timeout):
                worker.kill(f"event loop blocked for more than {lim.hook_timeout:g}s")
                return

    async def _supervise(self) -> None:
        """Restart crashed workers with backoff; open the circuit after too many."""
        lim = self.limits
        while True:
            worker = self._worker
            assert worker is not None and worker.exited is not None
            await asyncio.shield(worker.exited)
            if self._stopping:
                return
            self._up.clear()
            self.bridge.detach()
            if self._pinger is not None:
                self._pinger.cancel()
            reason = self._launcher.exit_reason(worker)
            self.last_error = reason
            now = time.monotonic()
            # A crash with events in flight counts against those events (the bus retries
            # and dead-letters them): towards the circuit it counts once per event, so a
            # poison event retried three times costs one crash, while a plugin that
            # crashes on every event still opens its circuit.
            tied = bool(worker.lost_events)
            fresh = [e for e in worker.lost_events if e not in self._crashed_events]
            for event_id in fresh:
                self._crashed_events[event_id] = None
                if len(self._crashed_events) > 1024:
                    self._crashed_events.popitem(last=False)
            (self._crashes if fresh or not tied else self._event_crashes).append(now)
            for crashes in (self._crashes, self._event_crashes):
                while crashes and now - crashes[0] > lim.window_s:
                    crashes.popleft()
            if len(self._crashes) > lim.max_restarts:
                error = CircuitOpen(self.name, len(self._crashes), lim.window_s, reason)
                await self._open_circuit(error)
                return
            self.state = HostState.RESTARTING
            delay = lim.backoff(len(self._crashes) + len(self._event_crashes))
            log.warning(
                "sandboxed plugin %r worker died%s: %s; restart %d in %.2fs",
                self.name, " handling an event (counted against the event)" if tied else "",
                reason, self.restarts + 1, delay,
            )
            await asyncio.sleep(delay)  # backoff, not synchronisation
            await self._launcher.discard_cgroup()
            self.restarts += 1
            try:
                await self._launch(None)
            except Exception as e:  # noqa: BLE001 - any failure counts as the next crash
                # The worker is dead or being killed: the loop counts it as the next crash.
                log.warning("sandboxed plugin %r restart failed: %s", self.name, e)
                if self._worker is not None:
                    self._worker.kill(f"restart failed: {e}")
                continue
            self.state = HostState.ACTIVE

    async def _open_circuit(self, error: CircuitOpen) -> None:
        self.state = HostState.FAILED
        self.last_error = str(error)
        log.error("%s", error)
        await self.bridge.close()
        self._up.set()  # waiters wake up and see the failed state
        if self._failed is not None and not self._failed.done():
            self._failed.set_result(error)
        if self.on_failed is not None:
            result = self.on_failed(self, error)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._callbacks.add(task)
                task.add_done_callback(self._callbacks.discard)
        # Nothing runs any more: cgroup and scratch directory go now, not at stop().
        await self._launcher.release()

    def _check_usable(self) -> None:
        if self.state == HostState.FAILED:
            raise CircuitOpen(self.name, len(self._crashes), self.limits.window_s,
                              self.last_error or "")
        if self.state not in (HostState.ACTIVE, HostState.STOPPING) or not self._up.is_set():
            raise WorkerCrashed(self.name, f"the plugin is {self.state}, not active")

    async def _release(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        worker = self._worker
        if worker is not None and worker.alive:
            worker.kill("released")
            await worker.wait(5.0)
        await self.bridge.close()
        await self._launcher.release()
        self._up.clear()
