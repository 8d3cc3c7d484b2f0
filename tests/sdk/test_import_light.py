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


def _imported_by(modules: str, forbidden: tuple[str, ...]) -> str:
    code = (
        f"import sys, {modules}\n"
        f"bad = sorted(m for m in sys.modules if m.startswith({forbidden!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_the_sdk_helper_modules_stay_light_too() -> None:
    modules = "orrery.sdk.clock, orrery.sdk.http, orrery.sdk.wire, orrery.sdk.client"
    assert _imported_by(modules, FORBIDDEN) == ""


def test_the_testing_package_imports_the_kernel_only_when_a_fixture_runs() -> None:
    assert _imported_by("orrery.sdk.testing", ("orrery.kernel", "orrery.sandbox", "aiohttp")) == ""
