"""The Plugin base class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = ["Plugin"]


class Plugin:
    """Base class of every Orrery plugin.

    Subclass it, set the class attributes that apply and implement hooks from
    `orrery.sdk.hookspecs` as methods marked with `orrery.sdk.hookimpl`. The kernel
    makes a fresh instance at every (re)load; keep state on the instance or in
    ``ctx.store``, never in module globals.
    """

    #: Unique plugin name. Default: the entry-point name, or the file/package name.
    name: ClassVar[str] = ""
    #: Version. Default: the distribution's version, or ``0.0.0+folder``.
    version: ClassVar[str] = ""
    #: Plugins that must be active first: name -> PEP 440 specifier (``""`` = any).
    requires: ClassVar[Mapping[str, str]] = {}
    #: Plugins used when present (started first), never required.
    optional: ClassVar[Mapping[str, str]] = {}
    #: What the plugin may do, e.g. ``"bus.publish:orders.>"``; enforced in the sandbox.
    permissions: ClassVar[Sequence[str]] = ()
    #: A pydantic model validating ``[plugins.<name>]`` of the config file.
    Config: ClassVar[type[Any] | None] = None
    #: Run out of process in a sandboxed worker.
    sandbox: ClassVar[bool] = False
    #: One line saying what the plugin does (``plugins ls --wide``, ``plugins show``).
    #: Default: the distribution's summary, or the class docstring's first line.
    description: ClassVar[str] = ""
    #: Who wrote it. Default: the distribution's author.
    author: ClassVar[str] = ""

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} plugin {self.name or '?'}>"
