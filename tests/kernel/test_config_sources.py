"""Runtime configuration against orrery.toml and the environment across restarts, and
unknown keys refused with the field named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from orrery.kernel import Kernel
from orrery.sdk import ConfigError

PLUGIN = '''
from pydantic import BaseModel
from orrery.sdk import Plugin, hookimpl


class Settings(BaseModel):
    greeting: str = "hello"
    volume: int = 1


class Greeter(Plugin):
    name = "greeter"
    Config = Settings
'''


@pytest.fixture
def setup(tmp_path: Path, write_plugin: Any, plugins_dir: Path) -> tuple[Path, Any]:
    write_plugin("greeter.py", PLUGIN)
    config = tmp_path / "orrery.toml"
    config.write_text('[plugins.greeter]\ngreeting = "ahoy"\n')

    def kernel(env: dict[str, str] | None = None) -> Kernel:
        return Kernel(plugins_dirs=[plugins_dir], state_dir=tmp_path / "s", config=config,
                      env=env or {}, entry_points=False, watch=False)

    return config, kernel


async def test_a_runtime_value_survives_a_restart_and_says_so(setup: tuple[Path, Any]) -> None:
    _, kernel = setup
    async with kernel() as k:
        await k.configure("greeter", {"greeting": "moin", "volume": 1})
        assert k.plugin_config_sources("greeter") == {"greeting": "runtime", "volume": "default"}
    async with kernel() as k:
        assert k.plugin_config("greeter")["greeting"] == "moin"
        assert k.plugin_config_sources("greeter")["greeting"] == "runtime"


async def test_editing_the_file_afterwards_beats_the_stale_runtime_value(
    setup: tuple[Path, Any],
) -> None:
    config, kernel = setup
    async with kernel() as k:
        await k.configure("greeter", {"greeting": "moin", "volume": 5})
    config.write_text('[plugins.greeter]\ngreeting = "servus"\n')
    async with kernel() as k:
        values = k.plugin_config("greeter")
        sources = k.plugin_config_sources("greeter")
    # The edited key follows the file; the untouched runtime value stays.
    assert (values["greeting"], sources["greeting"]) == ("servus", "file")
    assert (values["volume"], sources["volume"]) == (5, "runtime")


async def test_the_environment_wins_and_a_runtime_change_of_it_is_refused(
    setup: tuple[Path, Any],
) -> None:
    _, kernel = setup
    async with kernel() as k:
        await k.configure("greeter", {"greeting": "moin"})
    env = {"ORRERY_PLUGINS__GREETER__GREETING": "grüezi"}
    async with kernel(env) as k:
        assert k.plugin_config("greeter")["greeting"] == "grüezi"
        assert k.plugin_config_sources("greeter")["greeting"] == "environment"
        with pytest.raises(ConfigError, match="ORRERY_PLUGINS__GREETER__GREETING") as caught:
            await k.configure("greeter", {"greeting": "moin"})
        assert caught.value.path == "plugins.greeter.greeting"


async def test_an_unknown_key_in_the_file_fails_the_plugin_naming_it(
    setup: tuple[Path, Any],
) -> None:
    config, kernel = setup
    config.write_text('[plugins.greeter]\ngreting = "typo"\n')
    async with kernel() as k:
        info = k.plugins["greeter"]
        assert info.state == "failed"
        assert "plugins.greeter.greting" in (info.error or "")
        with pytest.raises(ConfigError) as caught:
            await k.configure("greeter", {"greeting": "ok", "colour": "red"})
    assert caught.value.path == "plugins.greeter.colour"
