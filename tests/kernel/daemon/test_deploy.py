"""deploy/: the systemd unit and the container image definition."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .support import REPO

UNIT = REPO / "deploy" / "orrery.service"
DOCKERFILE = REPO / "deploy" / "Dockerfile"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as section -> key -> values (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"key outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_has_what_a_daemon_service_needs() -> None:
    unit = parse_unit(UNIT.read_text())
    assert unit["Unit"]["Description"]
    service = unit["Service"]
    exec_start = service["ExecStart"][0]
    assert re.search(r"/orrery daemon\b", exec_start)
    for flag in ("--state-dir", "--port", "--config"):
        assert flag in exec_start
    assert service["KillSignal"] == ["SIGTERM"]
    grace = float(re.search(r"--grace-period (\S+)", exec_start).group(1))  # type: ignore[union-attr]
    assert float(service["TimeoutStopSec"][0]) > grace
    assert service["Restart"] == ["on-failure"]
    assert service["User"] != ["root"]
    assert service["StateDirectoryMode"] == ["0700"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this environment's CLI.
    orrery = Path(sys.executable).with_name("orrery")
    assert orrery.exists()
    unit = tmp_path / "orrery.service"
    unit.write_text(UNIT.read_text().replace("/opt/orrery/bin/orrery", str(orrery)))
    out = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in out.stderr.splitlines() if "orrery.service" in line]
    assert out.returncode == 0 and not complaints, out.stderr


def test_dockerfile_runs_the_daemon_unprivileged_with_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r'^ENTRYPOINT \["orrery", "daemon"\]', text, re.M)
    assert re.search(r"^EXPOSE 7878$", text, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "/v1/health" in text
    assert '"--host", "0.0.0.0"' in text and "/var/lib/orrery" in text
