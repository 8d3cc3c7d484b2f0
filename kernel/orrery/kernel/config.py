"""Configuration: the ``orrery.toml`` model, per-plugin sections, and the operator's
runtime choices (disabled plugins, configuration set through the API)."""

from ._choices import OperatorChoices
from ._config import (
    OrreryConfig,
    PluginSettings,
    load_config,
    plugin_section,
    validate_plugin_config,
)

__all__ = [
    "OperatorChoices",
    "OrreryConfig",
    "PluginSettings",
    "load_config",
    "plugin_section",
    "validate_plugin_config",
]
