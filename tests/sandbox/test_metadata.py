"""Metadata changes (#13 item 3) and unix/netlink/vsock sockets (#13 item 4) are denied
in every sandbox mode, whatever uid the worker runs as."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from orrery.sandbox import LayerUnavailable

ATTACK = '''
import os, signal, socket, stat

def attempt(fn):
    try:
        fn()
    except OSError as e:
        return f"denied: {type(e).__name__} errno {e.errno}"
    return "allowed"

def setuid_bit():
    path = os.path.join(os.environ["HOME"], "sh")
    with open(path, "wb") as f:
        f.write(b"#!/bin/sh\\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fchmod(fd, 0o4755)
    finally:
        os.close(fd)

def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    finally:
        s.close()

class Attack(Plugin):
    @hookimpl
    def orrery_start(self, ctx):
        self.ctx = ctx

    @hookimpl
    def orrery_health(self):
        c = self.ctx.config
        out = {
            "chmod_token": attempt(lambda: os.chmod(c["token"], 0o666)),
            "chmod_folder": attempt(lambda: os.chmod(c["folder"], 0o777)),
            "chmod_self": attempt(lambda: os.chmod(c["plugin"], 0o666)),
            "chown": attempt(lambda: os.chown(c["plugin"], 65534, 65534)),
            "lchown": attempt(lambda: os.lchown(c["folder"], 65534, 65534)),
            "utime": attempt(lambda: os.utime(c["plugin"], (0, 0))),
            "setxattr": attempt(lambda: os.setxattr(c["plugin"], "user.x", b"1")),
            "removexattr": attempt(lambda: os.removexattr(c["plugin"], "user.x")),
            "setuid_bit": attempt(setuid_bit),
        }
        for name, path in c["sockets"].items():
            out[name] = attempt(lambda: connect(path))
        out["signal_kernel"] = attempt(lambda: os.kill(c["kernel_pid"], signal.SIGCONT))
        out["netlink"] = attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
        out["vsock"] = attempt(lambda: socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM))
        a, b = socket.socketpair()
        a.close(), b.close()
        out["socketpair"] = "allowed"
        return out
'''
SOCKETS = {
    "postgres": "/var/run/postgresql/.s.PGSQL.5432",
    "mariadb": "/run/mysqld/mysqld.sock",
}


@pytest.fixture
def attack(kernel, plugin_file, tmp_path):
    """Start the attack plugin as the worst case: uid 0 (its file is closed to nobody)."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    token = state / "token"
    token.write_text("secret")
    token.chmod(0o600)
    path = plugin_file("attack", ATTACK)
    path.chmod(0o600)
    os.setxattr(path, "user.x", b"0") if hasattr(os, "setxattr") else None
    sockets = {k: v for k, v in SOCKETS.items() if os.path.exists(v)}

    async def run(permissions=()):
        host = await kernel.sandbox(
            path, permissions=list(permissions),
            config={"token": str(token), "folder": str(path.parent), "plugin": str(path),
                    "sockets": sockets, "kernel_pid": os.getpid()},
        )
        return await host.call_hook("orrery_health")

    before = {p: os.stat(p) for p in (token, path, path.parent)}
    yield run
    for p, st in before.items():
        now = os.stat(p)
        assert (now.st_mode, now.st_uid, now.st_mtime_ns) == (st.st_mode, st.st_uid, st.st_mtime_ns)
    assert os.getxattr(path, "user.x") == b"0"


@pytest.fixture
def need_seccomp(need_layer):
    need_layer("seccomp")


async def test_metadata_changes_and_signals_to_the_kernel_are_denied(
    attack, sandbox_mode, need_seccomp
):
    seen = await attack()
    for name in ("chmod_token", "chmod_folder", "chmod_self", "chown", "lchown", "utime",
                 "setxattr", "removexattr", "setuid_bit", "signal_kernel"):
        assert seen[name].startswith("denied"), (name, seen[name])


async def test_unix_sockets_need_a_permission(attack, sandbox_mode, need_seccomp):
    if not any(os.path.exists(p) for p in SOCKETS.values()):
        pytest.skip("neither PostgreSQL's nor MariaDB's socket exists here")
    seen = await attack(permissions=["net"])  # even with net: unix sockets are separate
    for name, path in SOCKETS.items():
        if os.path.exists(path):
            assert seen[name] == "denied: PermissionError errno 13", (name, seen[name])
    assert seen["vsock"].startswith("denied")
    assert seen["socketpair"] == "allowed"


async def test_netlink_and_vsock_need_a_permission(attack, sandbox_mode, need_seccomp):
    seen = await attack()
    assert seen["netlink"] == "denied: PermissionError errno 13"
    assert seen["vsock"] == "denied: PermissionError errno 13"


async def test_net_unix_permission_grants_unix_sockets(attack, sandbox_mode, need_seccomp):
    pg = SOCKETS["postgres"]
    if not os.path.exists(pg):
        pytest.skip("PostgreSQL's socket does not exist here")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(pg)  # the host itself can
    seen = await attack(permissions=[f"net.unix:{pg}"])
    assert seen["postgres"] == "allowed"
    assert seen["netlink"].startswith("denied")


async def test_missing_namespaces_are_said_loudly_and_a_require_refuses(
    kernel, echo_plugin, monkeypatch, caplog
):
    from orrery.sandbox import LayerStatus, _launcher, detect_layers

    found = dict(detect_layers())
    found["namespaces"] = LayerStatus("namespaces", False, "", "turned off by the test")
    monkeypatch.setattr(_launcher, "detect_layers", lambda: found)
    with caplog.at_level(logging.WARNING, logger="orrery.sandbox"):
        await kernel.sandbox(echo_plugin, name="loud")
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR and "namespaces" in r.message]
    assert loud and "WITHOUT namespaces" in loud[0].message
    with pytest.raises(LayerUnavailable, match="namespaces"):
        await kernel.sandbox(echo_plugin, name="strict", require=["namespaces"])



WRITER = '''
import os

class Writer(Plugin):
    @hookimpl
    def orrery_start(self, ctx):
        self.ctx = ctx

    @hookimpl
    def orrery_health(self):
        out = {}
        for name, path in self.ctx.config["paths"].items():
            try:
                with open(path, "w") as f:
                    f.write("pwned")
                out[name] = "allowed"
            except OSError as e:
                out[name] = f"denied: errno {e.errno}"
        return out
'''


async def test_root_is_read_only_outside_scratch_even_without_landlock(
    kernel, plugin_file, tmp_path, monkeypatch, sandbox_mode
):
    """With namespaces the mount tree itself is read-only outside scratch and fs.write
    paths, so a missing Landlock does not open the host's files to writes."""
    from orrery.sandbox import LayerStatus, _launcher

    if sandbox_mode == "none":
        pytest.skip("without a mount namespace only Landlock limits writes")
    layers = dict(_launcher.detect_layers())
    layers["landlock"] = LayerStatus("landlock", False, "", "turned off by the test")
    monkeypatch.setattr(_launcher, "detect_layers", lambda: layers)
    granted = tmp_path / "granted"
    granted.mkdir()
    path = plugin_file("writer", WRITER)
    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))  # not below bubblewrap's private /tmp
    host = await kernel.sandbox(
        path, permissions=[f"fs.write:{granted}"],
        config={"paths": {"plugin_folder": str(path.parent / "evil.py"),
                          "host_dir": str(outside / "evil.txt"),
                          "granted": str(granted / "ok.txt"),
                          "scratch": "ok.txt"}},  # relative: the worker runs in scratch
    )
    try:
        seen = await host.call_hook("orrery_health")
        assert seen["host_dir"] == "denied: errno 30", seen  # EROFS
        # bubblewrap's /tmp is private: a write there never reaches the host's.
        assert not (path.parent / "evil.py").exists()
        assert not (outside / "evil.txt").exists()
        assert seen["granted"] == "allowed" and seen["scratch"] == "allowed", seen
        assert (granted / "ok.txt").read_text() == "pwned"
    finally:
        shutil.rmtree(outside)
