"""``orrery plugins ...``: through the running daemon, or locally when none runs."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer
from orrery.kernel import load_config
from orrery.kernel.daemon import DaemonNotRunning, plugin_dict
from orrery.kernel.plugins import PluginInfo, PluginManager, PluginState
from orrery.sdk import PluginError

from ._client import (
    ClientStateDirOpt,
    DaemonClient,
    JsonOpt,
    TokenOpt,
    UrlOpt,
    WideOpt,
    connect,
    plugin_table,
)
from ._options import ConfigOpt, EntryPointsOpt, PluginsDirOpt
from ._output import Failed, print_json, print_table

__all__ = ["plugins_app", "survey"]

plugins_app = typer.Typer(help="Inspect and manage plugins.", no_args_is_help=True)
NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Plugin name, as listed by 'orrery plugins ls'.")
]


def _local_manager(
    plugins_dirs: list[Path], config: Path | None, entry_points: bool
) -> PluginManager:
    loaded = load_config(config)
    manager = PluginManager(
        node_id="local",
        config=loaded,
        plugins_dirs=[*map(Path, loaded.kernel.plugins_dirs), *plugins_dirs],
        entry_points=entry_points and loaded.kernel.entry_points,
    )
    manager.prepare()
    return manager


def survey(plugins_dirs: list[Path], config: Path | None, entry_points: bool) -> list[PluginInfo]:
    """Discover and resolve plugins locally, starting none of them."""
    manager = _local_manager(plugins_dirs, config, entry_points)
    return sorted(manager.infos.values(), key=lambda i: i.name)


def _survey_dicts(
    plugins_dirs: list[Path], config: Path | None, entry_points: bool
) -> list[dict[str, Any]]:
    manager = _local_manager(plugins_dirs, config, entry_points)
    return [plugin_dict(manager.runtime(name)) for name in sorted(manager.infos)]


_STATES = tuple(str(s) for s in PluginState)
StateOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--state",
        metavar="STATE",
        help=f"Only plugins in this state (repeatable): {', '.join(_STATES)}.",
    ),
]


def _states(values: list[str] | None) -> frozenset[str] | None:
    if not values:
        return None
    wanted = frozenset(v.strip().lower() for value in values for v in value.split(","))
    unknown = sorted(wanted - set(_STATES))
    if unknown:
        raise typer.BadParameter(
            f"unknown state {', '.join(unknown)}; use one of: {', '.join(_STATES)}",
            param_hint="--state",
        )
    return wanted


def _quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


@plugins_app.command("ls", help="List plugins: name, version, state, source, error.")
def list_plugins(
    plugins_dir: PluginsDirOpt = None,
    config: ConfigOpt = None,
    entry_points: EntryPointsOpt = True,
    state: StateOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
    local: Annotated[
        bool, typer.Option("--local", help="Discover locally even if a daemon is running.")
    ] = False,
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    states = _states(state)
    # --plugins-dir and --config describe a local set of plugins, so they imply --local.
    plugins: list[dict[str, Any]] | None = None
    if not (local or plugins_dir or config):
        try:
            query = f"?state={','.join(sorted(states))}" if states else ""
            plugins = connect(state_dir, url, token).call("GET", f"/v1/plugins{query}")
        except DaemonNotRunning:
            if url is not None:
                raise
    if plugins is None:
        plugins = _survey_dicts(plugins_dir or [], config, entry_points)
        if states:
            plugins = [p for p in plugins if p["state"] in states]
    if as_json:
        print_json(plugins)
    else:
        plugin_table(plugins, wide=wide)


def _one(
    method: str,
    path: str,
    state_dir: Path | None,
    url: str | None,
    token: str | None,
    body: Any = None,
) -> Any:
    client: DaemonClient = connect(state_dir, url, token)
    return client.call(method, path, body)


def _show(plugin: dict[str, Any], as_json: bool, wide: bool = False) -> None:
    if as_json:
        print_json(plugin)
    else:
        plugin_table([plugin], title=plugin["name"], wide=wide)


def _config_lines(sources: dict[str, dict[str, Any]], wide: bool) -> None:
    rows = [
        [
            key,
            json.dumps(entry["value"]),
            entry["source"] + (f" ({entry['variable']})" if entry.get("variable") else ""),
        ]
        for key, entry in sorted(sources.items())
    ]
    print_table(("key", "value", "from"), rows, wide=wide, shrink=("value", "from"), keep_tail=())


@plugins_app.command(
    "show",
    help="One plugin from the running daemon: its details, and each configuration value "
    "with where it comes from (environment, runtime, file, default).",
)
def show_plugin(
    name: NameArg,
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    client = connect(state_dir, url, token)
    plugin = client.call("GET", f"/v1/plugins/{_quoted(name)}")
    sources = client.call("GET", f"/v1/plugins/{_quoted(name)}/config/sources")
    if as_json:
        print_json({**plugin, "config": sources})
        return
    rows = [
        [key, str(plugin.get(key) or "")]
        for key in (
            "name",
            "version",
            "state",
            "enabled",
            "source",
            "error",
            "description",
            "author",
            "requires",
            "sandbox",
        )
    ]
    print_table(("what", "value"), rows, wide=wide, shrink=("value",), keep_tail=())
    if sources:
        typer.echo("")
        _config_lines(sources, wide)


def _lifecycle_command(operation: str, help_text: str) -> None:
    def command(
        name: NameArg,
        state_dir: ClientStateDirOpt = None,
        url: UrlOpt = None,
        token: TokenOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        path = f"/v1/plugins/{_quoted(name)}/{operation}"
        plugin = _one("POST", path, state_dir, url, token)
        _show(plugin, as_json)
        if operation != "disable" and plugin["state"] == "failed":
            raise Failed(f"plugin {name} is failed after {operation}: {plugin['error']}")

    plugins_app.command(operation, help=help_text)(command)


_lifecycle_command("enable", "Enable and start a plugin (kept across restarts).")
_lifecycle_command("disable", "Stop a plugin, dependents first, and keep it stopped.")
_lifecycle_command("reload", "Load a plugin's code afresh; the old version keeps serving on error.")


def _report(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(answer)
        return
    for line in answer.get("output", []):
        typer.echo(line, err=True)
    for change, names in sorted(answer["changes"].items()):
        if names:
            typer.echo(f"{change}: {', '.join(names)}", err=True)
    plugin_table(answer["plugins"])


def _daemon_or_none(
    state_dir: Path | None, url: str | None, token: str | None
) -> DaemonClient | None:
    """The running daemon's client, or None when none runs (and no --url was given)."""
    try:
        return connect(state_dir, url, token)
    except DaemonNotRunning:
        if url is not None:
            raise
        return None


def _pip_here(*args: str) -> None:
    """Run pip for this interpreter with its output live on the terminal."""
    code = subprocess.call([sys.executable, "-m", "pip", "--disable-pip-version-check", *args])
    if code != 0:
        raise PluginError(f"pip {' '.join(args)} failed (exit {code}); see pip's output above")


def _local_listing(as_json: bool) -> None:
    plugins = _survey_dicts([], None, True)
    if as_json:
        print_json(plugins)
    else:
        plugin_table(plugins)


@plugins_app.command(
    "install",
    help="pip-install SPEC into the daemon's environment (or this one, when no daemon "
    "runs), then rescan.",
)
def install_plugin(
    spec: Annotated[
        str, typer.Argument(metavar="SPEC", help="pip requirement or path, e.g. orrery-metrics")
    ],
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    client = _daemon_or_none(state_dir, url, token)
    if client is None:
        _pip_here("install", spec)
        _local_listing(as_json)
        return
    _report(client.call("POST", "/v1/plugins", {"spec": spec}), as_json)


@plugins_app.command("uninstall", help="Stop a plugin and pip-uninstall its distribution.")
def uninstall_plugin(
    name: NameArg,
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    client = _daemon_or_none(state_dir, url, token)
    if client is not None:
        _report(client.call("DELETE", f"/v1/plugins/{_quoted(name)}"), as_json)
        return
    candidate = _local_manager([], None, True).runtime(name).candidate
    if candidate.kind != "entrypoint" or candidate.distribution is None:
        raise PluginError(f"plugin {name!r} comes from {candidate.source}, not from pip")
    _pip_here("uninstall", "--yes", candidate.distribution)
    _local_listing(as_json)


@plugins_app.command("rescan", help="Pick up plugins installed, upgraded or removed with pip.")
def rescan_plugins(
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    client = _daemon_or_none(state_dir, url, token)
    if client is None:
        _local_listing(as_json)  # without a daemon, every listing is a fresh scan
        return
    _report(client.call("POST", "/v1/plugins/rescan"), as_json)


def _parse_value(raw: str) -> Any:
    # JSON when it parses (10, true, [1], "x"), else the plain string: greeting=moin works.
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@plugins_app.command("config", help="Show a plugin's configuration, or set KEY=VALUE pairs.")
def plugin_config(
    name: NameArg,
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...", help="Pairs to set (VALUE is JSON or a plain string)."
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the whole section instead of merging.")
    ] = False,
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    client = connect(state_dir, url, token)
    path = f"/v1/plugins/{_quoted(name)}/config"
    values: dict[str, Any]
    if assignments:
        values = {} if replace else client.call("GET", path)
        for pair in assignments:
            key, sep, raw = pair.partition("=")
            if not sep or not key:
                raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="KEY=VALUE")
            values[key] = _parse_value(raw)
        values = client.call("PUT", path, values)
    else:
        values = client.call("GET", path)
    if as_json:
        print_json(values)
        return
    if not values:
        typer.echo(f"plugin {name} has no configuration")
        return
    _config_lines(client.call("GET", f"{path}/sources"), wide)
