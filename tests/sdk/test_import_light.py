"""A sandboxed worker imports only the SDK: importing it must stay light."""

import subprocess
import sys

FORBIDDEN = ("orrery.kernel", "orrery.sandbox", "aiohttp", "pydantic", "watchdog", "typer", "rich")


def test_importing_sdk_pulls_in_no_kernel_or_heavy_modules() -> None:
    code = (
        "import sys, orrery.sdk, orrery.sdk.hookspecs\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"orrery.sdk imported: {out.stdout.strip()}"
