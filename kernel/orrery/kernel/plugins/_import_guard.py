"""Importing plugin code so that its top level can neither hang nor end the kernel.

The import runs in a thread the kernel waits for at most ``timeout`` seconds. A module
that is still running by then (``while True: ...``) is interrupted with an exception
raised inside that thread, which stops any loop of Python code; one blocked inside a C
call (``time.sleep(10**9)``) cannot be interrupted and is left behind on its daemon
thread, never registered. Either way the plugin is failed with the reason.

While a plugin imports, ``os._exit`` and ``os.abort`` raise `ExitDuringImport` instead
of ending the process: a module that calls them at import time fails to load and the
kernel keeps serving. Code that ends the process by other means (a signal to itself,
ctypes) is not stopped; in-process plugins are trusted code — run untrusted code with
``sandbox = true``.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from orrery.kernel.errors import PluginLoadError

__all__ = ["ExitDuringImport", "ImportTimedOut", "import_guarded"]

T = TypeVar("T")
_guard_lock = threading.Lock()
_guard_depth = 0
_saved: dict[str, Any] = {}


class ExitDuringImport(SystemExit):
    """Plugin code called ``os._exit`` or ``os.abort`` while being imported."""

    def __init__(self, call: str) -> None:
        super().__init__(call)
        self.call = call


class ImportTimedOut(BaseException):
    """Raised inside an import thread that ran past its timeout (not an Exception, so
    the plugin's own ``except Exception`` does not swallow it)."""


def _refuse_exit(status: int) -> NoReturn:
    raise ExitDuringImport(f"os._exit({status})")


def _refuse_abort() -> NoReturn:
    raise ExitDuringImport("os.abort()")


@contextmanager
def _process_kept() -> Iterator[None]:
    global _guard_depth
    with _guard_lock:
        if _guard_depth == 0:
            _saved.update(_exit=os._exit, abort=os.abort)
            os._exit = _refuse_exit
            os.abort = _refuse_abort
        _guard_depth += 1
    try:
        yield
    finally:
        with _guard_lock:
            _guard_depth -= 1
            if _guard_depth == 0:
                os._exit = _saved["_exit"]
                os.abort = _saved["abort"]


def _interrupt(thread: threading.Thread) -> None:
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(ImportTimedOut)
        )


def import_guarded(load: Callable[[], T], *, timeout: float, what: str) -> T:
    """Run ``load()`` (an import) in a thread, bounded by ``timeout`` seconds.

    Raises `PluginLoadError` when it does not finish in time; whatever ``load`` raised
    otherwise (`ExitDuringImport` for a refused ``os._exit``).
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, load()))
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            outcome.append((False, e))

    thread = threading.Thread(target=run, name=f"orrery-import:{what}", daemon=True)
    with _process_kept():
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            _interrupt(thread)
            thread.join(1.0)  # give an interrupted loop a moment to unwind
            raise PluginLoadError(
                f"cannot import {what}: the import did not finish within {timeout:g} s "
                f"(does its module top level loop or block?); move long work into "
                f"orrery_start / ctx.spawn, or raise [kernel] import_timeout"
            )
    ok, value = outcome[0]
    if not ok:
        raise value
    result: T = value
    return result
