"""Plugin discovery, validation, resolution and lifecycle."""

from ._context import KernelContext
from ._hooks import HookRelay
from ._loading import ENTRY_POINT_GROUP, FOLDER_VERSION, PluginCandidate
from ._manager import PluginManager
from ._resolution import Declared, Resolution, resolve
from ._routes import Route, RouteTable
from ._services import ServiceRegistry
from ._state import PluginInfo, PluginState
from ._validation import PluginSpec, validate_plugin_class

__all__ = [
    "ENTRY_POINT_GROUP",
    "FOLDER_VERSION",
    "Declared",
    "HookRelay",
    "KernelContext",
    "PluginCandidate",
    "PluginInfo",
    "PluginManager",
    "PluginSpec",
    "PluginState",
    "Resolution",
    "Route",
    "RouteTable",
    "ServiceRegistry",
    "resolve",
    "validate_plugin_class",
]
