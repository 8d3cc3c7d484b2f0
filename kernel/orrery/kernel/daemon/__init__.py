"""The kernel daemon: HTTP API with bearer-token auth, OpenAPI, event streams, lifecycle."""

from ._app import API_ENDPOINTS, build_app
from ._describe import describe, plugin_dict
from ._endpoints import Endpoint, Param
from ._http import DaemonSettings
from ._lock import (
    DAEMON_FILE,
    LOCK_FILE,
    DaemonAddress,
    StateLock,
    read_daemon_file,
    write_daemon_file,
)
from ._mount import PluginRequest, PluginRouter
from ._openapi import build_openapi
from ._server import Daemon, serve
from ._streams import ReplayBuffer, StreamHub
from ._token import TOKEN_FILE, load_or_create_token, read_token
from .errors import ApiError, DaemonError, DaemonLocked, DaemonNotRunning, HttpError

__all__ = [
    "API_ENDPOINTS",
    "DAEMON_FILE",
    "LOCK_FILE",
    "TOKEN_FILE",
    "ApiError",
    "Daemon",
    "DaemonAddress",
    "DaemonError",
    "DaemonLocked",
    "DaemonNotRunning",
    "DaemonSettings",
    "Endpoint",
    "HttpError",
    "Param",
    "PluginRequest",
    "PluginRouter",
    "ReplayBuffer",
    "StateLock",
    "StreamHub",
    "build_app",
    "build_openapi",
    "describe",
    "load_or_create_token",
    "plugin_dict",
    "read_daemon_file",
    "read_token",
    "serve",
    "write_daemon_file",
]
