from __future__ import annotations

import pytest
from orrery.sandbox import LAYER_NAMES, SandboxLimits, detect_layers


def test_from_config_takes_known_keys() -> None:
    limits = SandboxLimits.from_config(
        {"memory_mb": 64, "require": ["landlock"], "greeting": "ignored"}
    )
    assert limits.memory_mb == 64
    assert limits.require == ("landlock",)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"memory_mb": 0}, "memory_mb must be a positive integer"),
        ({"require": ["selinux"]}, "'selinux' is not a layer"),
        ({"hook_timeout": -1}, "hook_timeout must be positive"),
        ({"open_files": 8}, "open_files=8 is too small"),
        ({"spin_us": "fast"}, "spin_us must be a number, got 'fast'"),
        ({"ping_interval": None}, "ping_interval must be a number, got None"),
        ({"cpu_quota": "half"}, "cpu_quota must be a number"),
    ],
)
def test_bad_limits(config: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SandboxLimits.from_config(config)


def test_backoff_is_exponential_and_capped() -> None:
    limits = SandboxLimits(backoff_base=0.5, backoff_max=3.0)
    assert [limits.backoff(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_detect_layers_reports_every_layer_with_a_sentence() -> None:
    found = detect_layers()
    assert tuple(found) == LAYER_NAMES
    for name, status in found.items():
        assert status.name == name
        assert len(status.detail) > 10
    assert detect_layers() is found  # cached
