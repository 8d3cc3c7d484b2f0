"""Kernel configuration: one TOML file plus ``ORRERY_<SECTION>__<KEY>`` environment overrides."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

__all__ = [
    "BusConfig",
    "KernelSection",
    "OrreryConfig",
    "PluginSettings",
    "StorageConfig",
    "apply_env_overrides",
    "format_validation_error",
    "load_config",
    "validate_plugin_config",
]

ENV_PREFIX = "ORRERY_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KernelSection(_Section):
    node_id: str | None = None
    start_timeout: float = Field(10.0, gt=0)
    stop_timeout: float = Field(10.0, gt=0)
    hook_timeout: float = Field(5.0, gt=0)
    #: Seconds a plugin module's import may take before the plugin is failed (a module
    #: top level that never returns must not hold the kernel).
    import_timeout: float = Field(30.0, gt=0)
    plugins_dirs: list[str] = []
    entry_points: bool = True
    #: Watch plugin folders and hot-reload changed plugins.
    watch: bool = True
    #: Seconds of quiet after a file event before a change is applied (a writer closing
    #: the file applies it after ``reload_settle`` instead).
    reload_quiet: float = Field(0.05, ge=0)
    reload_settle: float = Field(0.002, ge=0)


class BusConfig(_Section):
    """``[bus]``: the backend and its delivery settings."""

    #: "memory" (one process; durable subscriptions in the storage journal) or "nats".
    backend: Literal["memory", "nats"] = "memory"
    #: NATS server(s), comma-separated: nats://[user:password@]host:port.
    url: str = "nats://127.0.0.1:4222"
    queue_size: int = Field(1024, ge=1)
    max_attempts: int = Field(3, ge=1)
    retry_backoff: float = Field(0.01, ge=0)
    #: Seconds a handler awaited by its subscriber's worker may run before it is
    #: cancelled and the attempt counts as failed (retried, then dead-lettered).
    #: 0 turns the timeout off. A plain sync handler called inline cannot be interrupted.
    handler_timeout: float = Field(60.0, ge=0)
    #: Live subscriptions one plugin may hold; beyond, subscribe raises
    #: TooManySubscriptions.
    max_subscriptions_per_plugin: int = Field(10_000, ge=1)
    #: First subject token of every event on NATS; kernels sharing it share events.
    prefix: str = Field("orrery", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    #: JetStream stream of durable subscriptions (default: <PREFIX>_DURABLE).
    stream: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]+$")
    #: Seconds a node may hold a durable event unacknowledged before another gets it.
    ack_wait: float = Field(30.0, gt=0)
    #: Seconds to wait for the NATS server at start.
    connect_timeout: float = Field(5.0, gt=0)


class StorageConfig(_Section):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    dsn: str | None = None
    #: The SQLite file (default ``<state-dir>/orrery.db``). Kernels with their own state
    #: directories may share one file, as nodes sharing a PostgreSQL database do.
    path: str | None = None


class OrreryConfig(_Section):
    kernel: KernelSection = KernelSection()
    bus: BusConfig = BusConfig()
    storage: StorageConfig = StorageConfig()
    plugins: dict[str, dict[str, Any]] = {}


class PluginSettings(_Section):
    """Keys of ``[plugins.<name>]`` the kernel reads itself; the rest is the plugin's Config."""

    enabled: bool = True
    start_timeout: float | None = Field(None, gt=0)
    stop_timeout: float | None = Field(None, gt=0)
    sandbox: bool | dict[str, Any] | None = None


RESERVED_PLUGIN_KEYS = frozenset(PluginSettings.model_fields)


def format_validation_error(error: ValidationError, prefix: str = "") -> tuple[str, str]:
    """First error of ``error`` as ``(dotted.path, message)``, the path under ``prefix``."""
    first = error.errors()[0]
    parts = [prefix] if prefix else []
    parts += [str(p) for p in first["loc"]]
    path = ".".join(parts)
    message = first["msg"]
    if "input" in first and first["type"] != "missing":
        message += f" (got {first['input']!r})"
    more = len(error.errors()) - 1
    if more:
        message += f"; and {more} more error{'s' if more > 1 else ''}"
    return path, message


def _parse_env_value(raw: str) -> Any:
    # Env values are read as TOML values when they parse (10, true, [1, 2], "x"),
    # otherwise as plain strings, so ORRERY_BUS__URL=nats://h:4222 needs no quoting.
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Merge ``ORRERY_A__B__C=value`` variables into ``data`` as ``data[a][b][c]``."""
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigError(
                f"environment variable {name} has an empty part; use ORRERY_SECTION__KEY",
                path=name,
                source="environment",
            )
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"environment variable {name} sets a key below {part!r}, which is not a table",
                    path=".".join(path),
                    source="environment",
                )
            node = child
        node[path[-1]] = _parse_env_value(raw)
    return data


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | OrreryConfig | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> OrreryConfig:
    """Read and validate configuration from a TOML file, a mapping, or nothing.

    Environment overrides from ``env`` (default: ``os.environ``) win over the file.
    Raises `ConfigError` whose ``path`` names the offending field.
    """
    if isinstance(source, OrreryConfig):
        return source
    env = os.environ if env is None else env
    origin = "configuration"
    data: dict[str, Any]
    if source is None:
        data = {}
    elif isinstance(source, Mapping):
        data = _deep_copy(source)
    else:
        path = Path(source)
        origin = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(
                f"config file {path} does not exist; create it or drop --config", source=origin
            ) from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}", source=origin) from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}", source=origin) from e
    apply_env_overrides(data, env)
    _normalise_plugin_names(data)
    try:
        return OrreryConfig.model_validate(data)
    except ValidationError as e:
        field, message = format_validation_error(e)
        raise ConfigError(f"{origin}: {field}: {message}", path=field, source=origin) from e


def _deep_copy(source: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in source.items()}


def _normalise_plugin_names(data: dict[str, Any]) -> None:
    # Environment variable names cannot hold '-', so ORRERY_PLUGINS__MY_PLUGIN__X also
    # addresses [plugins.my-plugin]; keep one section per plugin whichever spelling is used.
    plugins = data.get("plugins")
    if not isinstance(plugins, dict):
        return
    for name in [n for n in plugins if "_" in n]:
        dashed = name.replace("_", "-")
        if dashed in plugins and isinstance(plugins[dashed], dict):
            section = plugins.pop(name)
            if isinstance(section, dict):
                plugins[dashed].update(section)


def plugin_section(config: OrreryConfig, name: str) -> dict[str, Any]:
    """The raw ``[plugins.<name>]`` table (also found under the underscore spelling)."""
    section = config.plugins.get(name)
    if section is None:
        section = config.plugins.get(name.replace("-", "_"), {})
    return section


def validate_plugin_config(
    name: str,
    config_model: type[Any] | None,
    section: Mapping[str, Any],
    *,
    validated_elsewhere: bool = False,
) -> tuple[PluginSettings, Any]:
    """Split ``[plugins.<name>]`` into kernel settings and the plugin's validated Config.

    With ``validated_elsewhere`` (a sandboxed plugin, whose Config model only exists in
    its worker) the plugin's values are returned as a plain dict for the worker to check.
    Raises `ConfigError` naming the plugin, the field path and where to fix it.
    """
    reserved = {k: v for k, v in section.items() if k in RESERVED_PLUGIN_KEYS}
    values = {k: v for k, v in section.items() if k not in RESERVED_PLUGIN_KEYS}
    try:
        settings = PluginSettings.model_validate(reserved)
    except ValidationError as e:
        raise _plugin_config_error(name, e) from e
    if validated_elsewhere:
        return settings, values
    if config_model is None:
        if values:
            keys = ", ".join(sorted(values))
            raise ConfigError(
                f"plugin {name!r} takes no configuration, but [plugins.{name}] sets {keys}; "
                f"remove them or give the plugin a Config model",
                path=f"plugins.{name}",
            )
        return settings, _NoConfig()
    try:
        return settings, config_model.model_validate(values)
    except ValidationError as e:
        raise _plugin_config_error(name, e) from e


def _plugin_config_error(name: str, error: ValidationError) -> ConfigError:
    field, message = format_validation_error(error, f"plugins.{name}")
    env_name = ENV_PREFIX + "__".join(p.upper().replace("-", "_") for p in field.split("."))
    return ConfigError(
        f"invalid config for plugin {name!r}: {field}: {message}; fix [plugins.{name}] in "
        f"orrery.toml or set {env_name}",
        path=field,
    )


class _NoConfig(BaseModel):
    """``ctx.config`` of a plugin without a Config model."""

    model_config = ConfigDict(extra="forbid", frozen=True)
