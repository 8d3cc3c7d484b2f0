"""Installing, upgrading and removing pip distributions under a running kernel."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "orrery-hello"

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from orrery.kernel import Kernel

    async def main(first, second, state):
        out = {}
        lines = []
        async with Kernel(state_dir=state, env={}, watch=False) as k:
            out["before"] = "hello" in k.plugins
            out["install"] = await k.install(first, lines.append)
            out["v1"] = await k.bus.request("hello.greet", {"name": "Ada"})
            out["v1_version"] = k.plugins["hello"].version
            out["upgrade"] = await k.install(second, lines.append)
            out["v2"] = await k.bus.request("hello.greet", {"name": "Ada"})
            out["v2_version"] = k.plugins["hello"].version
            out["v2_state"] = str(k.plugins["hello"].state)
            out["uninstall"] = await k.uninstall("hello", lines.append)
            out["after_state"] = str(k.plugins["hello"].state)
            try:
                await k.install("/no/such/project", lines.append)
            except Exception as e:
                out["bad_install"] = type(e).__name__ + ": " + str(e)
        out["pip_output"] = any("Successfully installed" in line for line in lines)
        print(json.dumps(out))

    asyncio.run(main(*sys.argv[1:]))
    """
)


def test_install_upgrade_and_uninstall_with_pip(plugin_env: Path, tmp_path: Path) -> None:
    second = tmp_path / "orrery-hello-0.2"
    shutil.copytree(EXAMPLE, second, ignore=shutil.ignore_patterns("__pycache__"))
    pyproject = second / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    plugin = second / "src" / "orrery_hello" / "plugin.py"
    plugin.write_text(plugin.read_text().replace('"Hello, {name}!"', '"Hello again, {name}!"'))
    script = tmp_path / "drive.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [str(plugin_env), str(script), str(EXAMPLE), str(second), str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["before"] is False
    assert out["install"]["added"] == ["hello"]
    assert out["v1"] == {"text": "Hello, Ada!", "greeted": 1}
    assert out["v1_version"] == "0.1.0"
    assert out["upgrade"]["upgraded"] == ["hello"]
    assert out["v2"] == {"text": "Hello again, Ada!", "greeted": 2}  # store survived
    assert (out["v2_version"], out["v2_state"]) == ("0.2.0", "active")
    assert out["uninstall"]["removed"] == ["hello"]
    assert out["after_state"] == "uninstalled"
    assert out["bad_install"].startswith("PluginError: pip install /no/such/project failed")
    assert out["pip_output"] is True
