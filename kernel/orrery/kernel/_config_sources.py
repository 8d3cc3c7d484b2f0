"""Precedence of plugin configuration values, and where each effective value came from.

From strongest to weakest:

1. **environment** (``ORRERY_PLUGINS__<NAME>__<KEY>``): set by whoever started the
   process; a runtime change of such a key is refused, naming the variable.
2. **runtime** (``PUT /v1/plugins/{name}/config``, ``orrery plugins config``): kept
   across restarts, but only while the file still says what it said when the value was
   set. Each runtime value remembers the file's value it replaced; when the file has
   changed that key since (edited, added or removed), the file wins and the runtime
   value is dropped with a warning. A stale runtime value never silently beats an edit.
3. **file** (``[plugins.<name>]`` in orrery.toml, or the mapping an embedding program
   passed: "config").
4. **default** of the plugin's Config model (or of the kernel keys).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from orrery.sdk import ConfigError

from ._config import OrreryConfig, env_variable, plugin_section, section_of

__all__ = ["RuntimeEntries", "apply_runtime", "config_sources", "plan_runtime"]

log = logging.getLogger("orrery.kernel")

#: plugin name -> key -> {"value": v, "base": what the file said then (absent: unset)}.
RuntimeEntries = dict[str, dict[str, dict[str, Any]]]
_UNSET = object()


def _overtaken(
    key: str, entry: Mapping[str, Any], file: Mapping[str, Any], env: Mapping[str, Any]
) -> str | None:
    """Why a runtime value no longer applies (None while it does)."""
    if key in env:
        return "the environment sets it"
    if file.get(key, _UNSET) != entry.get("base", _UNSET):
        return "the configuration file changed it since"
    return None


def apply_runtime(config: OrreryConfig, runtime: RuntimeEntries) -> bool:
    """Overlay the runtime values onto ``config.plugins``; drop (and log) the ones the
    file or the environment overtook. Returns whether any was dropped."""
    layers = config.layers
    dropped = False
    for name, entries in list(runtime.items()):
        file, env = section_of(layers.file, name), section_of(layers.env, name)
        section = dict(plugin_section(config, name))
        for key, entry in list(entries.items()):
            reason = _overtaken(key, entry, file, env)
            if reason is not None:
                log.warning(
                    "dropping the runtime value of plugins.%s.%s (%r): %s",
                    name,
                    key,
                    entry.get("value"),
                    reason,
                )
                del entries[key]
                dropped = True
            else:
                section[key] = entry["value"]
        if not entries:
            del runtime[name]
        config.plugins[name] = section
    return dropped


def plan_runtime(
    config: OrreryConfig, name: str, values: Mapping[str, Any], defaults: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """What ``PUT`` of ``values`` makes of plugin ``name``: the effective section (file
    and environment, with ``values`` over them) and the runtime entries to keep.

    Keys whose value equals what the file (or the default) already gives become no
    runtime entry, so ``plugins show`` keeps naming the real source. Raises
    `ConfigError` for a key the environment sets to something else.
    """
    layers = config.layers
    file, env = section_of(layers.file, name), section_of(layers.env, name)
    entries: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if key in env:
            if value != env[key]:
                path = f"plugins.{name}.{key}"
                raise ConfigError(
                    f"{path} is set by the environment variable {env_variable(path)} "
                    f"(= {env[key]!r}), which wins over runtime changes; unset it and "
                    f"restart the daemon to change the value here",
                    path=path,
                )
            continue
        if key in file:
            if value != file[key]:
                entries[key] = {"value": value, "base": file[key]}
        elif key not in defaults or value != defaults[key]:
            entries[key] = {"value": value}
    section = {**file, **env, **{k: e["value"] for k, e in entries.items()}}
    return section, entries


def config_sources(
    config: OrreryConfig, runtime: RuntimeEntries, name: str, keys: list[str]
) -> dict[str, str]:
    """``key -> "environment" | "runtime" | "file" (or "config") | "default"``."""
    layers = config.layers
    file, env = section_of(layers.file, name), section_of(layers.env, name)
    entries = runtime.get(name, {})
    sources: dict[str, str] = {}
    for key in keys:
        if key in env:
            sources[key] = "environment"
        elif key in entries:
            sources[key] = "runtime"
        elif key in file:
            sources[key] = layers.label
        else:
            sources[key] = "default"
    return sources
