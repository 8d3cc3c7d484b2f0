"""The per-message fast paths between the NATS bus and nats-py, against a real server."""

from __future__ import annotations

import asyncio
import uuid

import nats
from nats.aio.msg import Msg
from orrery.kernel.bus.nats._fastpath import (  # noqa: TID251 - the ban is meant for orrery.sdk
    DIRECT_SUPPORTED,
    DirectClient,
    FastPublisher,
    pump,
    round_trip,
    supported,
)

DEADLINE = 20.0


async def test_nats_round_trip_covers_publishes_still_buffered(nats_url: str) -> None:
    conn = DirectClient()
    await conn.connect(nats_url)
    try:
        subject = f"fast.{uuid.uuid4().hex}"
        seen: list[bytes] = []
        route = conn.direct(await conn.subscribe(subject), seen.append)
        assert route is not None
        await round_trip(conn)
        for i in range(100):  # never yields: all 100 are still in the pending buffer
            await conn.publish(subject, str(i).encode())
        await round_trip(conn)
        assert len(seen) == 100
    finally:
        await conn.close()


async def test_nats_fast_publisher_sends_what_publish_sends(nats_url: str) -> None:
    sender, receiver = DirectClient(), await nats.connect(nats_url)
    await sender.connect(nats_url)
    try:
        assert supported(sender)
        subject = f"fast.{uuid.uuid4().hex}"
        got: asyncio.Queue[Msg] = asyncio.Queue()
        await receiver.subscribe(subject, cb=got.put)
        await round_trip(receiver)
        fast = FastPublisher(sender)
        for i in range(3):
            waiting = fast.publish(subject, str(i).encode(), "reply.here" if i == 1 else "")
            assert waiting is None
        await round_trip(sender)
        async with asyncio.timeout(DEADLINE):
            msgs = [await got.get() for _ in range(3)]
        assert [(m.data, m.reply) for m in msgs] == [(b"0", ""), (b"1", "reply.here"), (b"2", "")]
    finally:
        await sender.close()
        await receiver.close()


async def test_nats_pump_and_direct_routes_deliver_in_order(nats_url: str) -> None:
    conn = DirectClient()
    await conn.connect(nats_url)
    try:
        subject = f"fast.{uuid.uuid4().hex}"
        pumped: list[bytes] = []
        direct: list[bytes] = []
        plain = await conn.subscribe(subject)
        task = asyncio.get_running_loop().create_task(
            pump(plain, lambda msg: pumped.append(msg.data))
        )
        routed = await conn.subscribe(subject)
        assert DIRECT_SUPPORTED
        route = conn.direct(routed, direct.append)
        assert route is not None
        await round_trip(conn)
        for i in range(200):
            await conn.publish(subject, str(i).encode())
        await round_trip(conn)  # the reader has taken everything sent before the PONG
        await plain._pending_queue.join()
        await route.settle()
        expected = [str(i).encode() for i in range(200)]
        assert pumped == expected and direct == expected
        conn.undirect(routed)
        task.cancel()
    finally:
        await conn.close()


async def test_nats_direct_route_holds_later_messages_behind_a_waiting_one(nats_url: str) -> None:
    conn = DirectClient()
    await conn.connect(nats_url)
    try:
        subject = f"fast.{uuid.uuid4().hex}"
        seen: list[bytes] = []
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def handle(data: bytes) -> asyncio.Future[None] | None:
            seen.append(data)
            return gate if data == b"1" else None  # "1" waits, as for a full queue

        routed = await conn.subscribe(subject)
        route = conn.direct(routed, handle)
        assert route is not None
        for i in range(5):
            await conn.publish(subject, str(i).encode())
        await round_trip(conn)
        assert seen == [b"0", b"1"]  # the reader carried on; 2-4 wait behind 1
        gate.set_result(None)
        await route.settle()
        assert seen == [b"0", b"1", b"2", b"3", b"4"]
    finally:
        await conn.close()
