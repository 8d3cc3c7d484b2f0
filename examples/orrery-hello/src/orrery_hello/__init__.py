"""An example Orrery plugin distributed as its own package."""

from .plugin import GREETER, Greeter, HelloPlugin, Settings

__all__ = ["GREETER", "Greeter", "HelloPlugin", "Settings"]
