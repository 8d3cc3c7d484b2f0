"""The workflows plugin for Orrery: counts pings, durably.

Other plugins use the service::

    service = ctx.services.get(WORKFLOWS)
    answer = await service.ping("ada")
"""

from ._config import Settings
from ._plugin import WORKFLOWS, WorkflowsPlugin
from ._service import WorkflowsService
from .errors import InvalidInput, WorkflowsError

__all__ = [
    "WORKFLOWS",
    "InvalidInput",
    "Settings",
    "WorkflowsError",
    "WorkflowsPlugin",
    "WorkflowsService",
]
