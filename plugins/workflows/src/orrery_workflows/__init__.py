"""The workflows plugin for Orrery: the durable execution engine and YAML DAG workflows
with human approval (DESIGN.md §9, §11; docs/workflows.md)."""

from ._config import Settings
from ._driver import ATTEMPT_HEADER, IDEMPOTENCY_HEADER
from ._loader import load_definition, load_yaml
from ._model import Approval, Compensation, Retry, Step, Workflow
from ._plugin import WORKFLOWS, WorkflowsPlugin
from ._service import WorkflowsService
from .errors import (
    DefinitionError,
    ExpressionError,
    InvalidDecision,
    InvalidInput,
    RunFinished,
    UnknownRun,
    UnknownWorkflow,
    WorkflowsError,
)

__all__ = [
    "ATTEMPT_HEADER",
    "IDEMPOTENCY_HEADER",
    "WORKFLOWS",
    "Approval",
    "Compensation",
    "DefinitionError",
    "ExpressionError",
    "InvalidDecision",
    "InvalidInput",
    "Retry",
    "RunFinished",
    "Settings",
    "Step",
    "UnknownRun",
    "UnknownWorkflow",
    "Workflow",
    "WorkflowsError",
    "WorkflowsPlugin",
    "WorkflowsService",
    "load_definition",
    "load_yaml",
]
