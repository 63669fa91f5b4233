"""The worker edge: thin Celery task bodies and the beat schedule (``celery -A tasks``).

Importing this package is the worker bootstrap: it reads settings from the environment
once and builds the Celery app. Nothing imports ``tasks``.
"""

from tasks import telemetry  # noqa: F401 - connects the signals that start logs and reports
from tasks.app import app

__all__ = ["app"]
