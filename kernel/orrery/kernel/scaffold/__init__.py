"""``orrery plugin new``: a pip-installable plugin project with tests."""

from ._create import ScaffoldError, create_plugin_project

__all__ = ["ScaffoldError", "create_plugin_project"]
