"""Plugin discovery, validation, resolution and lifecycle."""

from ._context import KernelContext
from ._hooks import HookRelay, new_pluggy_manager
from ._instance import LocalInstance, PluginInstance
from ._loading import ENTRY_POINT_GROUP, FOLDER_VERSION, PluginCandidate, class_candidate
from ._manager import PluginManager
from ._pip import run_pip
from ._resolution import Declared, Resolution, resolve
from ._routes import Route, RouteTable
from ._services import ServiceRegistry
from ._site import refresh_site_paths
from ._state import PluginInfo, PluginState
from ._validation import NAME_PATTERN, PluginSpec, validate_plugin_class
from ._watcher import FolderWatcher

__all__ = [
    "ENTRY_POINT_GROUP",
    "FOLDER_VERSION",
    "NAME_PATTERN",
    "Declared",
    "FolderWatcher",
    "HookRelay",
    "KernelContext",
    "LocalInstance",
    "PluginCandidate",
    "PluginInfo",
    "PluginInstance",
    "PluginManager",
    "PluginSpec",
    "PluginState",
    "Resolution",
    "Route",
    "RouteTable",
    "ServiceRegistry",
    "class_candidate",
    "new_pluggy_manager",
    "refresh_site_paths",
    "resolve",
    "run_pip",
    "validate_plugin_class",
]
