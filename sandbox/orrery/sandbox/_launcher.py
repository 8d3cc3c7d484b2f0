"""Starting worker incarnations of one plugin with the isolation layers this host has."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from orrery.sdk.errors import ConfigError

from ._bridge import Bridge
from ._cgroup import CgroupSet, cgroup_parents
from ._detect import detect_layers
from ._launch import LaunchPlan, PluginTarget, rlimits_for
from ._limits import LAYER_NAMES, SandboxLimits
from ._permissions import Permissions
from ._process import WorkerLost, WorkerProcess
from ._protocol import INIT
from ._seccomp import denied_families
from ._sweep import OWNER_FILE, owner_tag, sweep_cgroups, sweep_scratch
from .errors import LayerUnavailable, RemoteError, WorkerStartError

__all__ = ["Launcher"]

log = logging.getLogger("orrery.sandbox")
#: Scratch directories of this process, removed at exit if a host was never stopped.
_LIVE: set[str] = set()


@atexit.register
def _remove_live() -> None:
    for path in list(_LIVE):
        shutil.rmtree(path, ignore_errors=True)


class Launcher:
    """Owns what workers of one plugin share: layers, scratch directory, cgroup."""

    def __init__(
        self,
        name: str,
        target: PluginTarget,
        permissions: Permissions,
        limits: SandboxLimits,
        config: Mapping[str, Any],
        scratch_root: str | None,
        node_id: str = "",
    ) -> None:
        self.name = name
        self.node_id = node_id
        self.target = target
        self.permissions = permissions
        self.limits = limits
        self.config = config
        self.scratch_root = scratch_root
        self.layers: tuple[str, ...] = ()
        self.layer_report: dict[str, str] = {}
        self.dir: Path | None = None
        self.cgroup: CgroupSet | None = None
        self._plan: LaunchPlan | None = None
        #: What the worker runs as, e.g. ``uid 65534, no capabilities, no_new_privs``.
        self.privileges = "unknown"

    @property
    def scratch(self) -> str | None:
        return str(self.dir / "scratch") if self.dir is not None else None

    def prepare(self) -> None:
        """Decide the layers (raising `LayerUnavailable`) and create the scratch dir."""
        found = detect_layers()
        report: dict[str, str] = {}
        for name in LAYER_NAMES:
            status = found[name]
            report[name] = status.mechanism if status.available else "unavailable"
            if not status.available and name in self.limits.require:
                raise LayerUnavailable(self.name, name, status.detail)
        self.layer_report = report
        self.layers = tuple(n for n in LAYER_NAMES if found[n].available)
        root = self.scratch_root or tempfile.gettempdir()
        swept = sweep_scratch(root)
        if "cgroup" in self.layers:
            swept += sweep_cgroups(cgroup_parents())
        if swept:
            log.info("removed %d leftovers of kernels that are gone: %s", len(swept),
                     ", ".join(swept[:5]))
        self.dir = Path(tempfile.mkdtemp(prefix=f"orrery-{self.name}-", dir=root))
        (self.dir / OWNER_FILE).write_text(owner_tag())
        _LIVE.add(str(self.dir))
        # Searchable (not listable) so that a worker running as nobody reaches scratch/;
        # the log stays the kernel's.
        self.dir.chmod(0o711)
        (self.dir / "scratch").mkdir(mode=0o700)
        os.close(os.open(self.dir / "worker.log", os.O_CREAT | os.O_WRONLY, 0o600))

    def new_worker(self, bridge: Bridge) -> WorkerProcess:
        """A worker (not yet spawned) with a fresh cgroup."""
        lim = self.limits
        if "cgroup" in self.layers:
            try:
                self.cgroup = CgroupSet.create(
                    self.name, memory_mb=lim.memory_mb, max_pids=lim.max_pids,
                    cpu_quota=lim.cpu_quota,
                )
                self.layer_report["cgroup"] = f"{self.cgroup.version}: " + ", ".join(
                    f"{k} {v}" for k, v in self.cgroup.applied.items()
                )
            except OSError as e:
                self.cgroup = None
                self._layer_failed(None, "cgroup", str(e))
        worker = WorkerProcess(
            bridge.on_frame, self.remote_error, guard=bridge.guard, on_refused=bridge.on_refused
        )
        if self.cgroup is not None:
            worker.kill_extra = self.cgroup.kill_all
        return worker

    async def start(self, worker: WorkerProcess, state: dict[str, Any] | None) -> None:
        """Spawn ``worker``, load the plugin and run its start; on failure it is dead."""
        assert self.dir is not None
        lim = self.limits
        try:
            await worker.spawn(self._build, str(self.dir / "worker.log"))
        except OSError as e:
            raise WorkerStartError(self.name, f"cannot spawn the worker: {e}") from e
        assert self._plan is not None
        setup = {
            "name": self.name,
            "target": self.target.to_wire(),
            "config": dict(self.config),
            "permissions": list(self.permissions.declared),
            "state": state,
            "node_id": self.node_id,
            "landlock": self._plan.landlock,
            "seccomp": self._plan.seccomp,
            "run_as": self._plan.run_as,
            "spin_us": lim.spin_us,
        }
        try:
            info = await asyncio.wait_for(worker.request(INIT, setup), lim.start_timeout)
        except TimeoutError:
            worker.kill("start timed out")
            raise WorkerStartError(
                self.name, f"no answer within start_timeout={lim.start_timeout:g}s"
            ) from None
        except WorkerLost:
            await worker.wait(5.0)
            reason = self.exit_reason(worker)
            raise WorkerStartError(self.name, f"the worker died: {reason}") from None
        except BaseException:
            worker.kill("start failed")
            raise
        layers = dict(info.get("layers") or {})
        self.privileges = str(layers.pop("privileges", "unknown"))
        if self._plan.stays_root:
            self.privileges += f" (stays uid 0: {self._plan.stays_root})"
        for layer, applied in layers.items():
            if isinstance(applied, str) and applied.startswith("error"):
                self._layer_failed(worker, layer, applied)
            elif layer == "landlock":
                self.layer_report[layer] = f"abi {applied}"
            elif layer == "seccomp":
                self.layer_report[layer] = f"{applied} syscalls denied"
        if "rlimits" in self.layers:
            self.layer_report["rlimits"] = (
                f"as {lim.memory_mb} MiB, cpu {lim.cpu_seconds}s, nofile {lim.open_files}"
            )

    def _build(self, fd: int) -> tuple[list[str], dict[str, str], Callable[[], None]]:
        assert self.dir is not None
        lim = self.limits
        layers = self.layers
        perms = self.permissions
        self._plan = plan = LaunchPlan.build(
            fd=fd,
            target=self.target,
            scratch=str(self.dir / "scratch"),
            namespaces=detect_layers()["namespaces"].mechanism if "namespaces" in layers else "",
            landlock="landlock" in layers,
            seccomp="seccomp" in layers,
            rlimits=rlimits_for(lim.memory_mb, lim.cpu_seconds, lim.open_files)
            if "rlimits" in layers else None,
            join_cgroup=self.cgroup.join if self.cgroup is not None else None,
            net=self.permissions.net,
            fs_read=self.permissions.paths("fs.read"),
            fs_write=self.permissions.paths("fs.write"),
            deny_families=denied_families(
                net=perms.net, unix=bool(perms.paths("net.unix")), vsock=perms.allows("net.vsock")
            ),
        )
        if plan.run_as is not None:
            os.chown(self.dir / "scratch", *plan.run_as)
        return plan.argv, plan.env, plan.preexec

    def _layer_failed(self, worker: WorkerProcess | None, layer: str, why: str) -> None:
        self.layers = tuple(n for n in self.layers if n != layer)
        self.layer_report[layer] = f"failed: {why}"
        if layer in self.limits.require:
            if worker is not None:
                worker.kill(f"required layer {layer} failed")
            raise LayerUnavailable(self.name, layer, why)

    def remote_error(self, row: list[Any]) -> BaseException:
        """The host-side exception for an error row the worker sent."""
        name, message, attrs, tb = row[0], row[1], row[2], row[3] if len(row) > 3 else ""
        if name == "ConfigError":
            path = attrs.get("path")
            field = f"plugins.{self.name}.{path}" if path else f"plugins.{self.name}"
            return ConfigError(
                f"invalid config for plugin {self.name!r}: {field}: {message}; fix "
                f"[plugins.{self.name}] in orrery.toml",
                path=field,
            )
        return RemoteError(self.name, name, message, tb)

    def exit_reason(self, worker: WorkerProcess) -> str:
        """Why ``worker`` ended, with the last line it printed."""
        if worker.exited is not None and worker.exited.done():
            reason = worker.exited.result()
        else:
            reason = worker.kill_reason or "unknown"
        if self.cgroup is not None and reason.startswith("killed by SIGKILL"):
            if self.cgroup.oom_killed():
                reason = f"memory limit of {self.limits.memory_mb} MiB exceeded (OOM kill)"
        tail = self._log_tail()
        return f"{reason}{f'; last output: {tail}' if tail else ''}"

    def _log_tail(self) -> str:
        if self.dir is None:
            return ""
        try:
            with open(self.dir / "worker.log", "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 400))
                lines = f.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    async def discard_cgroup(self) -> None:
        """Kill what is left in the worker's cgroup and remove it."""
        if self.cgroup is not None:
            cgroup, self.cgroup = self.cgroup, None
            await cgroup.remove()

    async def release(self) -> None:
        """Remove the cgroup and the scratch directory."""
        await self.discard_cgroup()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            _LIVE.discard(str(self.dir))
            self.dir = None
