"""``python -m orrery_scheduler.cli``."""

from . import app

app()
