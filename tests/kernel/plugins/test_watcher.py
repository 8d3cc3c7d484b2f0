"""Plugin folders are watched: saving, creating and deleting files changes the plugins."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from orrery.sdk import Event, NoResponders

ANSWER = """
from orrery.sdk import Plugin, hookimpl

class Answer(Plugin):
    name = "{name}"
    requires = {requires}

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.bus.subscribe("{name}.ask", lambda e: {value!r})
"""


def answer(value: Any, name: str = "answer", requires: str = "{}") -> str:
    return ANSWER.format(name=name, value=value, requires=requires)


def next_event(k: Any, topic: str, where: Callable[[Event], bool] | None = None) -> Any:
    """A future resolved by the next event on ``topic`` (subscribe before acting)."""
    future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()

    def seen(event: Event) -> None:
        if not future.done() and (where is None or where(event)):
            future.set_result(event)

    k.bus.subscribe(topic, seen)
    return future


@pytest.fixture
def watched_kernel(make_kernel: Callable[..., Any]) -> Callable[..., Any]:
    def factory(**config: Any) -> Any:
        kernel = {"reload_quiet": 0.05, "reload_settle": 0.002, **config}
        return make_kernel(watch=True, config={"kernel": kernel})

    return factory


async def test_saving_a_file_reloads_it(watched_kernel, write_plugin) -> None:
    path = write_plugin("answer.py", answer(1))
    async with watched_kernel() as k:
        assert await k.bus.request("answer.ask", None) == 1
        reloaded = next_event(k, "orrery.plugin.reloaded")
        path.write_text(answer(2))
        await asyncio.wait_for(reloaded, 10)
        assert await k.bus.request("answer.ask", None) == 2


async def test_an_editor_style_atomic_save_reloads_it(watched_kernel, write_plugin) -> None:
    path = write_plugin("answer.py", answer(1))
    async with watched_kernel() as k:
        reloaded = next_event(k, "orrery.plugin.reloaded")
        temp = path.with_name(".answer.py.swp")
        temp.write_text(answer(3))
        os.replace(temp, path)
        await asyncio.wait_for(reloaded, 10)
        assert await k.bus.request("answer.ask", None) == 3


async def test_a_new_file_is_loaded_and_a_deleted_one_unloaded(
    watched_kernel, write_plugin, plugins_dir: Path
) -> None:
    async with watched_kernel() as k:
        started = next_event(k, "orrery.plugin.active", lambda e: e.data["name"] == "fresh")
        path = write_plugin("fresh.py", answer("new", name="fresh"))
        await asyncio.wait_for(started, 10)
        assert await k.bus.request("fresh.ask", None) == "new"
        gone = next_event(k, "orrery.plugin.uninstalled")
        path.unlink()
        await asyncio.wait_for(gone, 10)
        assert k.plugins["fresh"].state == "uninstalled"
        with pytest.raises(NoResponders):
            await k.bus.request("fresh.ask", None)


async def test_a_missing_dependency_arriving_later_starts_its_dependent(
    watched_kernel, write_plugin
) -> None:
    write_plugin("top.py", answer("top", name="top", requires="{'base': ''}"))
    async with watched_kernel() as k:
        assert k.plugins["top"].state == "failed"
        top_started = next_event(k, "orrery.plugin.active", lambda e: e.data["name"] == "top")
        write_plugin("base.py", answer("base", name="base"))
        await asyncio.wait_for(top_started, 10)
        assert await k.bus.request("top.ask", None) == "top"


async def test_a_broken_save_keeps_the_old_version_and_says_why(
    watched_kernel, write_plugin
) -> None:
    path = write_plugin("answer.py", answer(1))
    async with watched_kernel() as k:
        failed = next_event(k, "orrery.plugin.reload_failed")
        path.write_text("def broken(:\n")
        event = await asyncio.wait_for(failed, 10)
        assert "SyntaxError" in event.data["error"]
        assert k.plugins["answer"].state == "active"
        assert "SyntaxError" in (k.plugins["answer"].error or "")
        assert await k.bus.request("answer.ask", None) == 1


async def test_a_burst_of_saves_causes_one_reload(watched_kernel, write_plugin) -> None:
    path = write_plugin("answer.py", answer(0))
    async with watched_kernel(reload_quiet=0.3, reload_settle=0.3) as k:
        reloads: list[Event] = []
        k.bus.subscribe("orrery.plugin.reloaded", reloads.append)
        reloaded = next_event(k, "orrery.plugin.reloaded")
        for i in range(1, 11):
            path.write_text(answer(i))
        await asyncio.wait_for(reloaded, 10)
        watcher = k.watcher
        assert watcher is not None
        await watcher.settle()
        assert not watcher.pending  # nothing else pending
        assert len(reloads) == 1
        assert await k.bus.request("answer.ask", None) == 10


async def test_relative_plugin_folders_are_matched_to_watcher_paths(
    make_kernel, write_plugin, plugins_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_plugin("answer.py", answer(1))
    monkeypatch.chdir(plugins_dir.parent)
    config = {"kernel": {"reload_quiet": 0.05, "reload_settle": 0.002}}
    async with make_kernel(watch=True, plugins_dirs=[plugins_dir.name], config=config) as k:
        reloaded = next_event(k, "orrery.plugin.reloaded")
        path.write_text(answer(2))
        await asyncio.wait_for(reloaded, 10)
        assert await k.bus.request("answer.ask", None) == 2
        assert set(k.plugins) == {"answer"}


async def test_bytecode_caches_and_editor_files_are_ignored(
    watched_kernel, write_plugin, plugins_dir: Path
) -> None:
    write_plugin("answer.py", answer(1))
    async with watched_kernel() as k:
        watcher = k.watcher
        assert watcher is not None
        assert (
            watcher.entry_for(str(plugins_dir / "__pycache__" / "answer.cpython-311.pyc")) is None
        )
        assert watcher.entry_for(str(plugins_dir / "answer.py~")) is None
        assert watcher.entry_for(str(plugins_dir / "_private.py")) is None
        assert watcher.entry_for(str(plugins_dir / "notes.txt")) is None
        assert (
            watcher.entry_for(str(plugins_dir / "answer.py"))
            == (plugins_dir / "answer.py").resolve()
        )
        assert (
            watcher.entry_for(str(plugins_dir / "pkg" / "mod.py"))
            == (plugins_dir / "pkg").resolve()
        )


VERSIONED = """
from orrery.sdk import Plugin, hookimpl

class P(Plugin):
    name = "{name}"
    version = "{version}"
    requires = {requires}

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.bus.subscribe("{name}.ask", lambda e: "{version}")
"""


def versioned(name: str, version: str, requires: str = "{}") -> str:
    return VERSIONED.format(name=name, version=version, requires=requires)


async def test_a_hot_added_plugin_with_unmet_requires_fails_until_they_are_met(
    watched_kernel, write_plugin, plugins_dir: Path
) -> None:
    async with watched_kernel() as k:
        def named(n: str) -> Callable[[Event], bool]:
            return lambda e: e.data["name"] == n

        seen: list[str] = []
        k.bus.subscribe(
            "orrery.plugin.*",
            lambda e: seen.append(e.type.rsplit(".", 1)[1]) if e.data["name"] == "needy" else None,
        )
        # Missing requirement: failed with the reason, never started.
        failed = next_event(k, "orrery.plugin.failed", named("needy"))
        write_plugin("needy.py", versioned("needy", "1.0", "{'dep': '>=2'}"))
        event = await asyncio.wait_for(failed, 10)
        assert "requires 'dep>=2'" in event.data["error"]
        assert "not installed" in event.data["error"]
        assert k.plugins["needy"].state == "failed"
        with pytest.raises(NoResponders):
            await k.bus.request("needy.ask", None, timeout=1)

        # The dependency appears in the wrong version: still failed, reason updated.
        dep_up = next_event(k, "orrery.plugin.active", named("dep"))
        dep = write_plugin("dep.py", versioned("dep", "1.0"))
        await asyncio.wait_for(dep_up, 10)
        await k.watcher.settle()
        assert k.plugins["needy"].state == "failed"
        assert "but 'dep' is version 1.0" in (k.plugins["needy"].error or "")

        # The right version is saved: the dependent starts on its own.
        needy_up = next_event(k, "orrery.plugin.active", named("needy"))
        dep.write_text(versioned("dep", "2.0"))
        await asyncio.wait_for(needy_up, 10)
        assert k.plugins["needy"].error is None
        assert await k.bus.request("needy.ask", None) == "1.0"
        assert await k.bus.request("dep.ask", None) == "2.0"
        # Every change was announced, those made by resolution included.
        assert seen == ["failed", "failed", "resolved", "starting", "active"]


async def test_a_reload_that_would_break_a_dependent_is_refused(
    watched_kernel, write_plugin
) -> None:
    dep = write_plugin("dep.py", versioned("dep", "2.0"))
    write_plugin("needy.py", versioned("needy", "1.0", "{'dep': '>=2'}"))
    async with watched_kernel() as k:
        assert k.plugins["needy"].state == "active"
        refused = next_event(k, "orrery.plugin.reload_failed")
        dep.write_text(versioned("dep", "1.0"))
        event = await asyncio.wait_for(refused, 10)
        assert "old version kept" in event.data["error"]
        assert "requires 'dep>=2'" in event.data["error"]
        assert await k.bus.request("dep.ask", None) == "2.0"
        assert k.plugins["needy"].state == "active"
