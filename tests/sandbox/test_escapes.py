"""Escape attempts from a sandboxed plugin are denied, and denied calls are audited."""

from __future__ import annotations

import asyncio
import os

import pytest
from orrery.sandbox import AUDIT_TOPIC, RemoteError, detect_layers

PROBE = '''
import os, socket, ctypes

class Probe(Plugin):
    @hookimpl
    def orrery_start(self, ctx):
        self.ctx = ctx

    @hookimpl
    async def orrery_health(self):
        """Runs the probe named in the config; returns what happened."""
        probe, arg = self.ctx.config["probe"], self.ctx.config.get("arg")
        try:
            if probe == "read":
                with open(arg) as f:
                    return {"ok": f.read()}
            if probe == "write":
                arg = arg or os.path.join(os.environ["HOME"], "ok.txt")  # HOME is scratch
                with open(arg, "w") as f:
                    f.write("pwned")
                return {"ok": arg}
            if probe == "connect":
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(2)
                s.connect(("127.0.0.1", arg))
                s.close()
                return {"ok": "connected"}
            if probe == "ptrace":
                libc = ctypes.CDLL(None, use_errno=True)
                rc = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH to pid 1
                return {"ok": rc} if rc == 0 else {"error": f"errno {ctypes.get_errno()}"}
            if probe == "kill":
                os.kill(arg or os.getppid(), 15)
                return {"ok": "signalled"}
            if probe == "publish":
                await self.ctx.bus.publish(arg, {"x": 1})
                return {"ok": "published"}
            if probe == "subscribe":
                self.ctx.bus.subscribe(arg, lambda e: None)
                return {"ok": "subscribed"}
            if probe == "service":
                self.ctx.services.get(arg)
                return {"ok": "got"}
            if probe == "store":
                await self.ctx.store.put("k", 1)
                return {"ok": "stored"}
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}"}
        return {"error": "unknown probe"}
'''


async def probe(kernel, plugin_file, probe_name, arg=None, permissions=(), **kw):
    host = await kernel.sandbox(
        plugin_file("probe", PROBE), permissions=list(permissions),
        config={"probe": probe_name, "arg": arg}, **kw,
    )
    return host, await host.call_hook("orrery_health")


async def test_read_outside_plugin_folder_is_denied(kernel, plugin_file, tmp_path, need_layer):
    need_layer("landlock")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    _, result = await probe(kernel, plugin_file, "read", str(secret))
    assert "error" in result and "secret" not in result.get("ok", "")
    _, result = await probe(kernel, plugin_file, "read", "/etc/passwd")
    assert result["error"].startswith(("PermissionError", "FileNotFoundError"))


async def test_fs_read_permission_grants_a_path(kernel, plugin_file, tmp_path, need_layer):
    need_layer("landlock")
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("granted")
    _, result = await probe(
        kernel, plugin_file, "read", str(data / "in.txt"), permissions=[f"fs.read:{data}"]
    )
    assert result == {"ok": "granted"}


async def test_write_outside_scratch_is_denied(kernel, plugin_file, tmp_path, need_layer):
    need_layer("landlock")
    target = tmp_path / "plugins" / "pwned.txt"
    _, result = await probe(kernel, plugin_file, "write", str(target))
    assert result["error"].startswith(("PermissionError", "OSError"))
    assert not target.exists()
    _, result = await probe(kernel, plugin_file, "write", "/tmp/pwned.txt")
    assert "error" in result


async def test_write_inside_scratch_is_allowed(kernel, plugin_file, need_layer):
    need_layer("landlock")
    host, result = await probe(kernel, plugin_file, "write")
    assert result == {"ok": f"{host.scratch}/ok.txt"}


@pytest.fixture
async def listener():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port
    server.close()
    await server.wait_closed()


async def test_network_is_denied_without_net(kernel, plugin_file, listener):
    found = detect_layers()
    if not (found["namespaces"].available or found["seccomp"].available):
        pytest.skip("neither network namespaces nor seccomp are available here")
    _, result = await probe(kernel, plugin_file, "connect", listener)
    assert "error" in result
    assert result["error"].startswith(("PermissionError", "OSError", "ConnectionRefusedError"))


async def test_network_is_allowed_with_net(kernel, plugin_file, listener):
    _, result = await probe(kernel, plugin_file, "connect", listener, permissions=["net"])
    assert result == {"ok": "connected"}


async def test_ptrace_is_denied(kernel, plugin_file, need_layer):
    need_layer("seccomp")
    _, result = await probe(kernel, plugin_file, "ptrace")
    assert result == {"error": "errno 1"}


async def test_cannot_signal_outside_the_sandbox(kernel, plugin_file, need_layer):
    need_layer("namespaces")
    # Its parent is the namespace's init (never the kernel), which it may not signal;
    # the kernel's pid does not exist in its pid namespace.
    host, result = await probe(kernel, plugin_file, "kill")
    assert result["error"].startswith(("PermissionError", "ProcessLookupError"))
    _, result = await probe(kernel, plugin_file, "kill", os.getpid())
    assert result["error"].startswith(("PermissionError", "ProcessLookupError"))
    assert host.state == "active"


@pytest.fixture
async def audits(kernel):
    """Audit events as they are published: a queue of their data."""
    queue: asyncio.Queue[dict] = asyncio.Queue()
    kernel.bus.subscribe(AUDIT_TOPIC, lambda e: queue.put_nowait(e.data))
    return queue


async def audited(queue, predicate):
    async with asyncio.timeout(10):
        while not predicate(data := await queue.get()):
            pass
    return data


async def test_publish_outside_permissions_is_denied_and_audited(kernel, plugin_file, audits):
    _, result = await probe(
        kernel, plugin_file, "publish", "admin.reset", permissions=["bus.publish:orders.>"]
    )
    assert result["error"].startswith("PermissionDenied")
    assert not [e for e in kernel.bus.published if e.topic == "admin.reset"]
    audit = await audited(audits, lambda d: d["action"] == "bus.publish")
    assert audit == {"plugin": "probe", "action": "bus.publish", "resource": "admin.reset"}


async def test_publish_inside_permissions_is_allowed(kernel, plugin_file):
    _, result = await probe(
        kernel, plugin_file, "publish", "orders.new", permissions=["bus.publish:orders.>"]
    )
    assert result == {"ok": "published"}
    assert [e.data for e in kernel.bus.published if e.topic == "orders.new"] == [{"x": 1}]


async def test_subscribe_outside_permissions_is_denied_and_audited(kernel, plugin_file, audits):
    _, result = await probe(
        kernel, plugin_file, "subscribe", "secrets.>", permissions=["bus.subscribe:secrets.public"]
    )
    assert result["error"].startswith("PermissionDenied")
    assert not [s for s in kernel.bus.subs if s.pattern == "secrets.>"]
    await audited(audits, lambda d: d == {
        "plugin": "probe", "action": "bus.subscribe", "resource": "secrets.>"
    })


async def test_service_not_granted_is_denied(kernel, plugin_file, audits):
    kernel.registry["vault"] = object()
    _, result = await probe(kernel, plugin_file, "service", "vault")
    assert result["error"].startswith("PermissionDenied")
    await audited(audits, lambda d: d["action"] == "services.get")


async def test_store_needs_permission(kernel, plugin_file):
    _, result = await probe(kernel, plugin_file, "store")
    assert result["error"].startswith("PermissionDenied")
    _, result = await probe(kernel, plugin_file, "store", permissions=["store"])
    assert result == {"ok": "stored"}


async def test_start_error_is_reported(kernel, plugin_file):
    path = plugin_file("broken", """
    class Broken(Plugin):
        @hookimpl
        def orrery_start(self, ctx):
            raise RuntimeError("boom")
    """)
    with pytest.raises(RemoteError, match="boom"):
        await kernel.sandbox(path)


@pytest.mark.parametrize("mechanism", ["unshare", ""])
async def test_other_namespace_mechanisms(kernel, plugin_file, listener, monkeypatch, mechanism):
    """The unshare fallback and no namespaces at all still run and keep the rules."""
    import shutil

    from orrery.sandbox import LayerStatus, _launcher, detect_layers

    if mechanism and not shutil.which(mechanism):
        pytest.skip(f"{mechanism} is not installed")
    fake = dict(detect_layers())
    fake["namespaces"] = LayerStatus("namespaces", bool(mechanism), mechanism, "forced by test")
    monkeypatch.setattr(_launcher, "detect_layers", lambda: fake)
    host, result = await probe(kernel, plugin_file, "connect", listener)
    assert ("namespaces" in host.layers) == bool(mechanism)
    assert "error" in result
    _, result = await probe(
        kernel, plugin_file, "publish", "admin.reset", permissions=["bus.publish:orders.>"]
    )
    assert result["error"].startswith("PermissionDenied")
