"""A stand-in WAAPI gateway for development, tests and benchmarks.

It serves the reference's endpoints under ``/api/v1/external`` with the reference's
answers, and adds ``/_sandbox`` to read what was sent and to inject faults.
"""

from dispatcher.sandbox.config import (
    DEMO_KEY,
    DEMO_NUMBERS,
    DEMO_SECRET,
    DEMO_VERIFY_TOKEN,
    Faults,
    SandboxConfig,
    SandboxKey,
    SandboxQrSession,
    SandboxTemplate,
)
from dispatcher.sandbox.server import API_PREFIX, create_app, run

__all__ = [
    "API_PREFIX",
    "DEMO_KEY",
    "DEMO_NUMBERS",
    "DEMO_SECRET",
    "DEMO_VERIFY_TOKEN",
    "Faults",
    "SandboxConfig",
    "SandboxKey",
    "SandboxQrSession",
    "SandboxTemplate",
    "create_app",
    "run",
]
