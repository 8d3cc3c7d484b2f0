from pathlib import Path

import pytest
from orrery.kernel._config import load_config, validate_plugin_config
from orrery.sdk import ConfigError
from pydantic import BaseModel


def test_defaults_need_no_file() -> None:
    config = load_config(None, env={})
    assert config.bus.backend == "memory"
    assert config.storage.backend == "sqlite"
    assert config.plugins == {}


def test_toml_file_with_plugin_sections(tmp_path: Path) -> None:
    path = tmp_path / "orrery.toml"
    path.write_text('[bus]\nqueue_size = 8\n[plugins.greeter]\ngreeting = "hi"\n')
    config = load_config(path, env={})
    assert config.bus.queue_size == 8
    assert config.plugins["greeter"] == {"greeting": "hi"}


def test_environment_overrides_win_and_parse_values(tmp_path: Path) -> None:
    path = tmp_path / "orrery.toml"
    path.write_text("[bus]\nqueue_size = 8\n[plugins.my-plugin]\nlimit = 1\n")
    env = {
        "ORRERY_BUS__QUEUE_SIZE": "64",
        "ORRERY_BUS__URL": "nats://10.0.0.1:4222",
        "ORRERY_PLUGINS__MY_PLUGIN__LIMIT": "5",
        "ORRERY_PLUGINS__MY_PLUGIN__TAGS": '["a", "b"]',
        "ORRERY_KERNEL__ENTRY_POINTS": "false",
        "UNRELATED": "x",
    }
    config = load_config(path, env=env)
    assert config.bus.queue_size == 64
    assert config.bus.url == "nats://10.0.0.1:4222"
    assert config.kernel.entry_points is False
    assert config.plugins["my-plugin"] == {"limit": 5, "tags": ["a", "b"]}


def test_invalid_kernel_config_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "orrery.toml"
    path.write_text('[bus]\nbackend = "carrier-pigeon"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.path == "bus.backend"
    assert "carrier-pigeon" in str(info.value) and str(path) in str(info.value)


def test_unknown_section_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="bus.queue_sise"):
        load_config({"bus": {"queue_sise": 3}}, env={})


def test_broken_toml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "orrery.toml"
    path.write_text("[bus\n")
    with pytest.raises(ConfigError, match="not valid TOML.*line 1"):
        load_config(path, env={})


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


class Settings(BaseModel):
    greeting: str = "hello"
    retries: int = 3


def test_plugin_config_splits_kernel_keys_from_plugin_fields() -> None:
    settings, config = validate_plugin_config(
        "greeter", Settings, {"greeting": "hi", "enabled": False, "start_timeout": 2}
    )
    assert settings.enabled is False and settings.start_timeout == 2
    assert config == Settings(greeting="hi")


def test_invalid_plugin_config_names_plugin_field_and_fix() -> None:
    with pytest.raises(ConfigError) as info:
        validate_plugin_config("greeter", Settings, {"retries": "many"})
    message = str(info.value)
    assert info.value.path == "plugins.greeter.retries"
    assert "plugin 'greeter'" in message and "'many'" in message
    assert "ORRERY_PLUGINS__GREETER__RETRIES" in message


def test_config_for_a_plugin_without_config_model_is_an_error() -> None:
    with pytest.raises(ConfigError, match="takes no configuration"):
        validate_plugin_config("plain", None, {"colour": "red"})
