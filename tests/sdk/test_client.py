"""orrery.sdk.client: finding and reaching a daemon, and saying clearly when it can't."""

import socket
from pathlib import Path

import pytest
from orrery.sdk import OrreryError
from orrery.sdk.client import DaemonClient, DaemonNotRunning, connect, read_daemon_file, read_token


def test_no_daemon_file_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(DaemonNotRunning, match="orrery daemon --state-dir"):
        connect(tmp_path, url=None, token=None)


def test_a_garbled_daemon_file_counts_as_no_daemon(tmp_path: Path) -> None:
    (tmp_path / "daemon.json").write_text("{not json")
    assert read_daemon_file(tmp_path) is None


def test_token_problems_are_explained(tmp_path: Path) -> None:
    with pytest.raises(OrreryError, match="no API token"):
        read_token(tmp_path)
    (tmp_path / "token").write_text("\n")
    with pytest.raises(OrreryError, match="empty"):
        read_token(tmp_path)
    (tmp_path / "token").write_text("s3cret\n")
    (tmp_path / "token").chmod(0o600)
    assert read_token(tmp_path) == "s3cret"


def test_an_unreachable_url_is_daemon_not_running(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    client = DaemonClient(f"http://127.0.0.1:{port}", "t", timeout=5)
    with pytest.raises(DaemonNotRunning, match=f"127.0.0.1:{port}"):
        client.call("GET", "/v1/status")
