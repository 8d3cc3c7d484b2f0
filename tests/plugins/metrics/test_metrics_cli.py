"""``orrery metrics ls|show|export|dash`` against a real daemon process."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[3]


def _support() -> ModuleType:
    # The daemon tests' process helpers, loaded by path: test folders are not packages.
    path = REPO / "tests" / "kernel" / "daemon" / "support.py"
    spec = importlib.util.spec_from_file_location("orrery_daemon_test_support", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


support = _support()

PLUGIN = """
import orrery_metrics

class Metrics(orrery_metrics.MetricsPlugin):
    name = "metrics"
"""
CONFIG = """
[plugins.metrics]
scrape_interval = 3600
evaluation_interval = 3600

[[plugins.metrics.dashboards]]
name = "ops"
title = "Operations"
refresh = 60

[[plugins.metrics.dashboards.widgets]]
title = "Bus events"
kind = "stat"
query = "orrery_bus_events_total"

[[plugins.metrics.dashboards.widgets]]
title = "Plugins by state"
kind = "table"
query = "orrery_plugins"
"""


def orrery(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orrery.kernel.cli", *args], cwd=cwd, capture_output=True,
        text=True, timeout=120, env={**support.clean_env(), "COLUMNS": "200"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A daemon with the metrics plugin; its state dir is ``<cwd>/.orrery`` (the default).

    One per module: starting a daemon process is the slow part, and every test here
    only reads from it.
    """
    root = tmp_path_factory.mktemp("metrics-cli")
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "metrics_plugin.py").write_text(PLUGIN)
    (root / "orrery.toml").write_text(textwrap.dedent(CONFIG))
    handle = support.spawn_daemon(
        root / ".orrery", "--plugins-dir", str(plugins), "--config", str(root / "orrery.toml"),
        cwd=root,
    )  # fmt: skip
    try:
        handle.wait_ready()
        yield handle
    finally:
        if handle.stop() != 0:
            raise AssertionError(handle.log)


def cwd(running: Any) -> Path:
    return Path(running.state_dir).parent


def get(running: Any, path: str) -> tuple[str, str]:
    request = urllib.request.Request(
        running.url + path, headers={"Authorization": f"Bearer {running.token}"}
    )
    with support.no_proxy_opener.open(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_daemon_serves_prometheus_at_the_root(running: Any) -> None:
    content_type, body = get(running, "/metrics")
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    scraped = samples(body)
    assert scraped[("orrery_plugins", (("state", "active"),))] == 1
    assert ("orrery_bus_queue_depth", (("owner", "metrics"),)) in scraped


def test_ls_lists_metrics(running: Any) -> None:
    out = orrery("metrics", "ls", "--json", cwd=cwd(running))
    assert out.returncode == 0, out.stderr
    listed = {m["name"]: m for m in json.loads(out.stdout)}
    assert listed["orrery_bus_events_total"]["type"] == "counter"
    assert listed["orrery_http_request_seconds"]["labels"] == ["route", "method"]
    table = orrery("metrics", "ls", "--wide", cwd=cwd(running))
    assert table.returncode == 0, table.stderr
    assert "orrery_plugins" in table.stdout and "Plugins by lifecycle state" in table.stdout


def test_show_prints_one_metric(running: Any) -> None:
    out = orrery("metrics", "show", "orrery_plugins", "--json", cwd=cwd(running))
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["type"] == "gauge"
    assert {"labels": {"state": "active"}, "value": 1.0} in shown["series"]
    table = orrery("metrics", "show", "orrery_plugins", cwd=cwd(running))
    assert "state=active" in table.stdout
    stats = orrery("metrics", "show", "orrery_http_request_seconds", cwd=cwd(running))
    assert stats.returncode == 0 and "P99" in stats.stdout


def test_show_of_an_unknown_metric_is_one_line_and_exit_1(running: Any) -> None:
    out = orrery("metrics", "show", "nope_total", cwd=cwd(running))
    assert out.returncode == 1  # the daemon answered: the operation failed
    assert len(out.stderr.strip().splitlines()) == 1
    assert "404" in out.stderr and "no metric named 'nope_total'" in " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("fmt", ["json", "csv", "prometheus"])
def test_export_in_each_format(running: Any, fmt: str, tmp_path: Path) -> None:
    out = orrery("metrics", "export", "--format", fmt, cwd=cwd(running))
    assert out.returncode == 0, out.stderr
    if fmt == "json":
        names = {m["name"] for m in json.loads(out.stdout)["metrics"]}
        assert "orrery_plugins" in names
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out.stdout)))
        assert {"metric": "orrery_plugins", "type": "gauge", "labels": "state=active",
                "stat": "value", "value": "1.0"} in rows  # fmt: skip
    else:
        assert samples(out.stdout)[("orrery_plugins", (("state", "active"),))] == 1
    target = tmp_path / f"export.{fmt}"
    written = orrery("metrics", "export", "-f", fmt, "-o", str(target), cwd=cwd(running))
    assert written.returncode == 0 and written.stdout == ""
    assert "orrery_plugins" in target.read_text()


def test_dash_once_and_json(running: Any) -> None:
    frame = orrery("metrics", "dash", "ops", "--once", cwd=cwd(running))
    assert frame.returncode == 0, frame.stderr
    for text in ("Operations", "Bus events", "Plugins by state", "prefix=orrery", "state=active"):
        assert text in frame.stdout
    rendered = json.loads(orrery("metrics", "dash", "ops", "--json", cwd=cwd(running)).stdout)
    assert [w["title"] for w in rendered["widgets"]] == ["Bus events", "Plugins by state"]


def test_dash_of_an_unknown_dashboard_says_how_to_define_one(running: Any) -> None:
    out = orrery("metrics", "dash", "ghost", "--once", cwd=cwd(running))
    assert out.returncode == 1
    assert "404" in out.stderr and "no dashboard named 'ghost'" in out.stderr


def dashboard_requests(running: Any) -> float:
    _, body = get(running, "/metrics")
    key = (
        "orrery_http_requests_total",
        (("method", "GET"), ("route", "/v1/plugins/metrics/dashboards/{name}"),
         ("status", "200")),
    )  # fmt: skip
    return samples(body).get(key, 0.0)


def test_dash_stays_live_until_ctrl_c(running: Any) -> None:
    before = dashboard_requests(running)
    proc = subprocess.Popen(
        [sys.executable, "-m", "orrery.kernel.cli", "metrics", "dash", "ops", "--interval",
         "0.2"],
        cwd=cwd(running), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**support.clean_env(), "COLUMNS": "200"},
    )  # fmt: skip
    try:
        # Live means it keeps fetching: wait (with a deadline) until the daemon has
        # answered it at least twice, i.e. it drew and then refreshed.
        deadline = time.monotonic() + 60
        while dashboard_requests(running) < before + 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "dash did not refresh within 60 s"
            time.sleep(0.05)  # polling interval of the check, not synchronisation
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "Operations" in stdout


def test_without_a_daemon_the_commands_fail_clearly(tmp_path: Path) -> None:
    # An empty state directory named explicitly: no daemon behind it.
    out = orrery("metrics", "ls", "--state-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 2
    assert "no daemon is running" in out.stderr and "Traceback" not in out.stderr
    down = orrery("metrics", "export", "-f", "csv", "--url", "http://127.0.0.1:9", "--token",
                  "x", cwd=tmp_path)  # fmt: skip
    assert down.returncode == 2 and "cannot reach the daemon" in down.stderr


def test_metrics_is_mounted_as_an_orrery_command(tmp_path: Path) -> None:
    out = orrery("metrics", "--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("ls", "show", "export", "anomaly", "dash"):
        assert command in out.stdout


def test_anomaly_checks_one_value(running: Any) -> None:
    history = ",".join(["10", "11"] * 15)
    odd = orrery("metrics", "anomaly", "500", "--history", history, "--json", cwd=cwd(running))
    assert odd.returncode == 0, odd.stderr
    verdict = json.loads(odd.stdout)
    assert verdict["anomaly"] is True and verdict["series"][0]["samples"] == 30
    usual = orrery("metrics", "anomaly", "10.5", "--history", history, cwd=cwd(running))
    assert usual.returncode == 0 and "normal" in usual.stdout
    stored = orrery("metrics", "anomaly", "3", "--selector", "orrery_plugins", "--json",
                    cwd=cwd(running))  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    assert {r["metric"] for r in json.loads(stored.stdout)["series"]} == {"orrery_plugins"}
    neither = orrery("metrics", "anomaly", "3", cwd=cwd(running))
    assert neither.returncode == 2 and "--selector" in neither.stderr
    unknown = orrery("metrics", "anomaly", "3", "--selector", "nope_total", cwd=cwd(running))
    assert unknown.returncode == 1 and "no stored series matches" in unknown.stderr


def test_tables_fit_80_columns_unless_wide(running: Any) -> None:
    narrow = orrery("metrics", "ls", cwd=cwd(running))
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    wide = orrery("metrics", "ls", "--wide", cwd=cwd(running))
    assert "Plugins by lifecycle state" in wide.stdout
    assert max(len(line) for line in wide.stdout.splitlines()) > 80
