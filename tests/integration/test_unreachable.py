"""An unreachable NATS or PostgreSQL server at kernel start is one clear error: which
server, which address, what to check; ``orrery daemon`` prints it as one line, never a
traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from orrery.kernel import Kernel
from orrery.kernel.bus import BusUnavailable  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.kernel.storage import StorageUnavailable  # noqa: TID251

from .cluster import StartNode

# Port 9 (discard) is closed on a test machine: connecting is refused at once.
DEAD_NATS = "nats://127.0.0.1:9"
DEAD_PG = "postgresql://postgres@127.0.0.1:9/test"


async def test_unreachable_nats_is_one_clear_error(tmp_path: Path) -> None:
    kernel = Kernel(
        state_dir=tmp_path,
        config={"bus": {"backend": "nats", "url": DEAD_NATS, "connect_timeout": 2}},
        entry_points=False,
        watch=False,
    )
    with pytest.raises(BusUnavailable) as info:
        await kernel.start()
    message = str(info.value)
    assert "NATS" in message and "127.0.0.1:9" in message
    assert "nats-server" in message and "bus.url" in message
    assert info.value.address == "127.0.0.1:9"


async def test_unreachable_postgres_is_one_clear_error(tmp_path: Path) -> None:
    kernel = Kernel(
        state_dir=tmp_path,
        config={"storage": {"backend": "postgres", "dsn": DEAD_PG}},
        entry_points=False,
        watch=False,
    )
    with pytest.raises(StorageUnavailable) as info:
        await kernel.start()
    assert "postgres" in str(info.value) and "127.0.0.1:9" in str(info.value)


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"bus": {"backend": "nats", "url": DEAD_NATS}}, id="nats"),
        pytest.param({"storage": {"backend": "postgres", "dsn": DEAD_PG}}, id="postgres"),
    ],
)
async def test_unreachable_server_stops_the_daemon_with_one_line(
    config: dict[str, object],
    start_node: StartNode,
    plugin_folder: Callable[[str, str], Path],
) -> None:
    folder = plugin_folder("empty", "")
    node = await start_node("lonely", config, folder)
    assert await node.exited() == 2
    errors = [line for line in node.lines if "cannot " in line]
    assert len(errors) == 1 and errors[0].startswith("error: cannot ")
    assert "127.0.0.1:9" in errors[0]
    assert not any("Traceback" in line for line in node.lines)
