"""The Orrery kernel: event bus, plugin lifecycle, sandboxing."""

from ._config import OrreryConfig, env_variable, load_config
from ._introspection import UNMATCHED_ROUTE, HttpStats, KernelIntrospection, provide_introspection
from ._kernel import Kernel
from ._logging import configure_logging
from .errors import KernelError
from .plugins import PluginInfo, PluginState

__all__ = [
    "UNMATCHED_ROUTE",
    "HttpStats",
    "KernelIntrospection",
    "configure_logging",
    "provide_introspection",
    "Kernel",
    "KernelError",
    "OrreryConfig",
    "PluginInfo",
    "PluginState",
    "env_variable",
    "load_config",
]
