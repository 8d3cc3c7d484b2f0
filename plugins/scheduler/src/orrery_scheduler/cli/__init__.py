"""``orrery tasks ...``: the scheduler's command line, talking to a running daemon.

Mounted by the kernel CLI through the ``orrery.cli`` entry point ``tasks``; also
runnable on its own as ``python -m orrery_scheduler.cli``. The only part of the plugin
that imports typer and rich.

Conventions shared by every plugin CLI: exit 0 when the operation succeeded, 1 when
it failed (an unknown task, a failed task under ``--follow``), 2 for a usage or
connection problem; errors are one line on stderr; tables fit 80 columns unless
``--wide``; ``--json`` prints the API's answer.
"""

from . import _schedules, _tasks  # noqa: F401 - importing them registers their commands
from ._common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "app"]
