"""Per-plugin sandbox limits and restart policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["LAYER_NAMES", "SandboxLimits"]

#: Names of the isolation layers, as used in ``require`` and reported per plugin.
LAYER_NAMES: tuple[str, ...] = ("namespaces", "landlock", "seccomp", "rlimits", "cgroup")


#: Limits given as a number of seconds (or a rate, or µs); checked to be numbers first.
_SECONDS_AND_RATES = (
    "cpu_quota", "hook_timeout", "start_timeout", "window_s", "backoff_base", "backoff_max",
    "ping_interval", "spin_us", "log_rate",
)


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits, required layers and restart policy of one sandboxed plugin.

    Build it from a plugin's ``[plugins.<name>]`` config section with `from_config`.
    """

    #: Memory cap in MiB: address-space rlimit and cgroup memory limit.
    memory_mb: int = 512
    #: CPU seconds the worker may burn in total (rlimit); the worker is killed past it.
    cpu_seconds: int = 3600
    #: Processes (and threads) in the sandbox, counting two bubblewrap helpers.
    max_pids: int = 64
    #: Open file descriptors (rlimit).
    open_files: int = 256
    #: CPU share as a fraction of one core (cgroup quota); ``None`` leaves it unlimited.
    cpu_quota: float | None = None
    #: Seconds a hook may take before the worker is killed.
    hook_timeout: float = 10.0
    #: Seconds the worker gets to start and load the plugin.
    start_timeout: float = 10.0
    #: Layers that must be active; a missing one is fatal instead of a warning.
    require: tuple[str, ...] = ()
    #: Circuit breaker: more than ``max_restarts`` crashes within ``window_s`` fail it.
    max_restarts: int = 5
    window_s: float = 60.0
    #: Restart delay: ``backoff_base * 2**(n-1)`` after the n-th crash, at most ``backoff_max``.
    backoff_base: float = 0.1
    backoff_max: float = 10.0
    #: Seconds between liveness pings; a worker whose loop does not answer within
    #: ``hook_timeout`` is killed. ``0`` turns pings off.
    ping_interval: float = 2.0
    #: Microseconds the worker keeps polling for the next frame after answering, before
    #: it sleeps: saves a CPU wake-up per event while events arrive back to back, and
    #: turns itself off while they do not. ``0`` never spins.
    spin_us: float = 100.0
    #: MiB a frame carrying data (an event, a store value, a service answer) may have;
    #: frames without data are capped at 64 KiB whatever this says.
    max_frame_mb: int = 16
    #: Log records per second the kernel writes for the plugin on average, in bursts of
    #: up to ``log_burst``; the rest are counted ("N log records dropped").
    log_rate: float = 100.0
    log_burst: int = 500
    #: Characters of one log record kept; the rest is cut off (and said so).
    log_line_max: int = 8192

    def __post_init__(self) -> None:
        require = tuple(self.require)
        object.__setattr__(self, "require", require)
        for name in require:
            if name not in LAYER_NAMES:
                raise ValueError(
                    f"sandbox require entry {name!r} is not a layer; choose from "
                    f"{', '.join(LAYER_NAMES)}"
                )
        for name in _SECONDS_AND_RATES:
            value = getattr(self, name)
            if value is None and name == "cpu_quota":
                continue  # unlimited
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"sandbox limit {name} must be a number, got {value!r}")
        for name in ("memory_mb", "cpu_seconds", "max_pids", "open_files", "max_frame_mb",
                     "log_burst", "log_line_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"sandbox limit {name} must be a positive integer, got {value!r}")
        for name in ("hook_timeout", "start_timeout", "window_s", "backoff_max", "log_rate"):
            if getattr(self, name) <= 0:
                value = getattr(self, name)
                raise ValueError(f"sandbox limit {name} must be positive, got {value!r}")
        if (self.backoff_base < 0 or self.ping_interval < 0 or self.max_restarts < 0
                or self.spin_us < 0):
            raise ValueError(
                "backoff_base, ping_interval, max_restarts and spin_us must not be negative"
            )
        if self.cpu_quota is not None and self.cpu_quota <= 0:
            raise ValueError(f"sandbox limit cpu_quota must be positive, got {self.cpu_quota!r}")
        if self.open_files < 16:
            raise ValueError(
                f"sandbox limit open_files={self.open_files} is too small for the worker "
                f"itself; use at least 16"
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SandboxLimits:
        """Take the known keys from a plugin's config section; other keys are ignored.

        Raises `ValueError` for a bad value, naming the key.
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in config.items() if k in known})

    def backoff(self, crashes: int) -> float:
        """Delay before the restart that follows the ``crashes``-th recent crash."""
        if crashes <= 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_base * 2 ** (crashes - 1)))
