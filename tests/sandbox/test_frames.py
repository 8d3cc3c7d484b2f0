"""Hostile raw frames from a worker cannot take the kernel down (#13 item 5): each gets an
error answer, the kernel's memory stays bounded and it keeps serving, in every mode."""

from __future__ import annotations

import asyncio
import resource

import msgspec
import pytest
from orrery.sandbox._guard import FrameRefused, measure

RAW = '''
import asyncio, gc, struct

def runtime():
    return next(o for o in gc.get_objects() if type(o).__name__ == "WorkerRuntime")

class Raw(Plugin):
    permissions = ["bus.publish:ok.>", "bus.subscribe:ok.>"]

    @hookimpl
    def orrery_start(self, ctx):
        self.ctx = ctx

    @hookimpl
    async def orrery_health(self):
        """Sends the raw frame the config describes and returns the kernel's answer."""
        rt = runtime()
        call_id = 10_000_000 + len(rt.pending)
        fut = asyncio.get_running_loop().create_future()
        rt.pending[call_id] = fut
        kind = self.ctx.config["attack"]
        prefix = bytes([0x97, 11]) + b"\\xce" + call_id.to_bytes(4, "big")
        if kind == "huge":        # 60 MB of data in one publish
            body = prefix + b"\\xabbus.publish" + b"\\xa4ok.x" + b"\\xc6" \\
                + (60 << 20).to_bytes(4, "big") + b"x" * (60 << 20) + b"\\xc0\\xc0"
        elif kind == "lists":     # 8 MiB of empty lists: ~78x once decoded
            n = 8 << 20
            body = prefix + b"\\xabbus.publish" + b"\\xa4ok.x" + b"\\xdd" \\
                + n.to_bytes(4, "big") + b"\\x90" * n + b"\\xc0\\xc0"
        elif kind == "deep":      # 100,000 levels of nesting
            depth = 100_000
            body = prefix + b"\\xabbus.publish" + b"\\xa4ok.x" + b"\\x91" * depth + b"\\x00" \\
                + b"\\xc0\\xc0"
        elif kind == "control":   # a subscribe (no data) carrying 1 MB
            body = bytes([0x96, 11]) + b"\\xce" + call_id.to_bytes(4, "big") \\
                + b"\\xadbus.subscribe" + b"\\x01" + b"\\xc6" + (1 << 20).to_bytes(4, "big") \\
                + b"p" * (1 << 20) + b"\\xc0\\xc0"
        elif kind == "denied":    # a denied publish: never decoded
            body = prefix + b"\\xabbus.publish" + b"\\xa8admin.rm" + b"\\xdd" \\
                + (4 << 20).to_bytes(4, "big") + b"\\x90" * (4 << 20) + b"\\xc0\\xc0"
        elif kind == "typed":     # arguments of the wrong types: msgspec refuses them
            import msgspec
            body = msgspec.msgpack.encode([11, call_id, "bus.subscribe", "one", 5, None, None])
        elif kind == "unknown":
            body = bytes([0x93, 11]) + b"\\xce" + call_id.to_bytes(4, "big") + b"\\xa4nope"
        rt.channel.sock.setblocking(True)
        rt.channel.sock.sendall(struct.pack(">I", len(body)) + body)
        rt.channel.sock.setblocking(False)
        try:
            await fut
        except Exception as e:
            answer = f"{type(e).__name__}: {e}"
        else:
            answer = "accepted"
        await self.ctx.bus.publish("ok.after", {"still": "serving"})
        return answer
'''


def _rss_peak_reset() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak resident set


def _rss_peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


ATTACKS = {
    "huge": "exceeds its",
    "lists": "more than",
    "deep": "deeper than",
    "control": "exceeds its 65536 byte limit",
    "denied": "PermissionDenied",
    "unknown": "unknown operation",
    "typed": "Expected `int`",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_hostile_frame_is_answered_and_bounded(
    kernel, plugin_file, sandbox_mode, attack
):
    host = await kernel.sandbox(
        plugin_file("raw", RAW), config={"attack": attack}, memory_mb=512
    )
    before = len(kernel.bus.published)
    _rss_peak_reset()
    base = _rss_peak_mb()
    answer = await asyncio.wait_for(host.call_hook("orrery_health"), 60)
    growth = _rss_peak_mb() - base
    assert ATTACKS[attack] in answer, answer
    # The kernel never held the frame decoded (8 MiB of lists would be ~600 MB).
    assert growth < 80, f"kernel peak RSS grew by {growth:.0f} MB"
    assert host.state == "active"
    assert [e.data for e in kernel.bus.published[before:] if e.topic == "ok.after"] == [
        {"still": "serving"}
    ]
    assert not [e for e in kernel.bus.published if e.topic == "admin.rm"]


def test_measure_bounds_depth_and_size():
    measure(msgspec.msgpack.encode({"a": [1, 2, {"b": "c"}], "d": None}))
    with pytest.raises(FrameRefused, match="deeper"):
        measure(b"\x91" * 100 + b"\x00")
    with pytest.raises(FrameRefused, match="more than"):
        measure(msgspec.msgpack.encode([[]] * 1000), max_objects=500)
    with pytest.raises(FrameRefused, match="claims more"):
        measure(b"\xdd\xff\xff\xff\xff")
