"""The Orrery kernel: event bus, plugin lifecycle, sandboxing."""

from ._config import OrreryConfig, env_variable, load_config
from ._kernel import Kernel
from .errors import KernelError
from .plugins import PluginInfo, PluginState

__all__ = [
    "Kernel",
    "KernelError",
    "OrreryConfig",
    "PluginInfo",
    "PluginState",
    "env_variable",
    "load_config",
]
