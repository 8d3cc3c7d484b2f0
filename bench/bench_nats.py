"""The NATS bus backend against raw nats-py, core and JetStream, in the same run.

Every contender moves the same events from one connection to another through the local
NATS server, in one process, and is timed from the first publish until the subscriber
has received the last event; best of several interleaved repeats.

core     raw: ``await nc.publish(subject, payload)`` with the CloudEvents JSON bytes an
         orrery event has, to a ``subscribe(cb=...)`` on a second connection.
         ours: ``await client.publish(topic, i)`` on one `NatsBus` (node a) delivered to
         a sync subscriber on another `NatsBus` (node b): Event built, CloudEvents JSON
         encoded, decoded and dispatched through the subscriber's machinery.
js       raw: ``js.publish_async`` of the same bytes into a stream (awaiting every
         publish ack), delivered to a durable push consumer whose callback acks each
         message: publish -> JetStream -> consumer -> ack, the work a durable event
         does. Also reported: raw async publish alone (``nats.raw_js_publish_msgs_per_s``).
         ours: ``await client.publish(topic, i)`` delivered to a durable subscription
         on node b (stored by JetStream, delivered, handled, acknowledged).

Keys: ``nats.core_msgs_per_s``, ``nats.raw_core_msgs_per_s``, ``nats.core_ratio_vs_raw``,
``nats.js_msgs_per_s``, ``nats.raw_js_msgs_per_s``, ``nats.js_ratio_vs_raw``,
``nats.raw_js_publish_msgs_per_s``. Run: ``python bench/bench_nats.py`` (NATS with
JetStream at ``ORRERY_BENCH_NATS_URL``, default nats://127.0.0.1:4222).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import nats
from nats.aio.msg import Msg
from nats.js import api
from orrery.kernel.bus.nats import NatsBus, encode_event  # noqa: TID251
from orrery.sdk import Event

URL = os.environ.get("ORRERY_BENCH_NATS_URL", "nats://127.0.0.1:4222")
CORE_N = 50_000
JS_N = 10_000
REPEATS = 3

Run = Callable[[int], Awaitable[float]]
Close = Callable[[], Awaitable[None]]
Factory = Callable[[], Awaitable[tuple[Run, Close]]]


def _payload() -> bytes:
    now = time.time_ns()
    event = Event(
        id=str(uuid.uuid4()), type="bench.ping", source="orrery://a/bench", time_ns=now, data=1
    )
    return encode_event(event)


class _Counter:
    """Resolves ``done`` when ``n`` messages arrived."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def hit(self) -> None:
        self.count += 1
        if self.count == self.n and not self.done.done():
            self.done.set_result(time.perf_counter())


async def _raw_core() -> tuple[Run, Close]:
    pub, sub = await nats.connect(URL), await nats.connect(URL)
    payload = _payload()
    subject = f"rawbench.{uuid.uuid4().hex[:8]}.ping"
    state: dict[str, _Counter] = {}

    async def on_msg(msg: Msg) -> None:
        state["c"].hit()

    await sub.subscribe(subject, cb=on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
    await sub.flush()

    async def run(n: int) -> float:
        counter = state["c"] = _Counter(n)
        publish = pub.publish
        start = time.perf_counter()
        for _ in range(n):
            await publish(subject, payload)
        await pub.flush()
        end = await counter.done
        return n / (end - start)

    async def close() -> None:
        await pub.close()
        await sub.close()

    return run, close


async def _ours(durable: bool) -> tuple[Run, Close]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    a = NatsBus("a", url=URL, prefix=prefix)
    b = NatsBus("b", url=URL, prefix=prefix)
    await a.start()
    await b.start()
    state: dict[str, _Counter] = {}

    def handler(event: Event) -> None:
        state["c"].hit()

    b.client("orrery://b/bench").subscribe(
        "bench.ping", handler, durable="bench" if durable else None
    )
    await b.flush()
    publisher = a.client("orrery://a/bench")

    async def run(n: int) -> float:
        counter = state["c"] = _Counter(n)
        publish = publisher.publish
        start = time.perf_counter()
        for i in range(n):
            await publish("bench.ping", i)
        end = await counter.done
        return n / (end - start)

    async def close() -> None:
        await a.stop()
        await b.stop()
        conn = await nats.connect(URL)
        if durable:
            await conn.jetstream().delete_stream(b.stream)
        await conn.close()

    return run, close


async def _raw_js(deliver: bool) -> tuple[Run, Close]:
    pub, sub = await nats.connect(URL), await nats.connect(URL)
    js, sjs = pub.jetstream(), sub.jetstream()
    name = f"RAWBENCH{uuid.uuid4().hex[:8].upper()}"
    subject = f"{name.lower()}.ping"
    await js.add_stream(
        name=name,
        subjects=[subject],
        retention=api.RetentionPolicy.INTEREST if deliver else api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
    )
    payload = _payload()
    state: dict[str, _Counter] = {}

    async def on_msg(msg: Msg) -> None:
        await msg.ack()
        state["c"].hit()

    if deliver:
        await sjs.subscribe(
            subject,
            durable="raw",
            queue="raw",
            stream=name,
            cb=on_msg,
            manual_ack=True,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
            config=api.ConsumerConfig(max_ack_pending=4096),
        )
        await sub.flush()

    async def run(n: int) -> float:
        counter = state["c"] = _Counter(n)
        start = time.perf_counter()
        for _ in range(n):
            await js.publish_async(subject, payload)
        await js.publish_async_completed()
        if not deliver:
            return n / (time.perf_counter() - start)
        end = await counter.done
        return n / (end - start)

    async def close() -> None:
        await js.delete_stream(name)
        await pub.close()
        await sub.close()

    return run, close


async def _measure() -> dict[str, float]:
    contenders: dict[
        str, tuple[Callable[[], Awaitable[tuple[Run, Callable[[], Awaitable[None]]]]], int]
    ] = {
        "raw_core": (_raw_core, CORE_N),
        "core": (lambda: _ours(False), CORE_N),
        "raw_js": (lambda: _raw_js(True), JS_N),
        "js": (lambda: _ours(True), JS_N),
        "raw_js_publish": (lambda: _raw_js(False), JS_N),
    }
    best = {name: 0.0 for name in contenders}
    opened = {}
    for name, (factory, _) in contenders.items():
        opened[name] = await factory()
    try:
        for _ in range(REPEATS):
            for name, (_, n) in contenders.items():
                run, _close = opened[name]
                best[name] = max(best[name], await run(n))
    finally:
        for _run, close in opened.values():
            await close()
    return {
        "nats.core_msgs_per_s": round(best["core"], 1),
        "nats.raw_core_msgs_per_s": round(best["raw_core"], 1),
        "nats.core_ratio_vs_raw": round(best["core"] / best["raw_core"], 3),
        "nats.js_msgs_per_s": round(best["js"], 1),
        "nats.raw_js_msgs_per_s": round(best["raw_js"], 1),
        "nats.js_ratio_vs_raw": round(best["js"] / best["raw_js"], 3),
        "nats.raw_js_publish_msgs_per_s": round(best["raw_js_publish"], 1),
    }


def run() -> dict[str, float]:
    """Run the benchmark; returns the figures keyed as listed in the module docstring."""
    logging.getLogger("orrery.bus").setLevel(logging.ERROR)
    return asyncio.run(_measure())


def main() -> None:
    results = run()
    print(f"NATS bus vs raw nats-py at {URL}, best of {REPEATS} ({sys.version.split()[0]})")
    for kind in ("core", "js"):
        raw, ours = results[f"nats.raw_{kind}_msgs_per_s"], results[f"nats.{kind}_msgs_per_s"]
        ratio = results[f"nats.{kind}_ratio_vs_raw"]
        print(f"{kind:<5} raw {raw:>10,.0f} msg/s   ours {ours:>10,.0f} msg/s   ratio {ratio:.2f}")
    print(f"js    raw async publish alone {results['nats.raw_js_publish_msgs_per_s']:,.0f} msg/s")
    print()
    for key, value in results.items():
        print(f"{key} = {value}")


if __name__ == "__main__":
    main()
