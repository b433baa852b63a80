"""Running the ``availability`` command as a newcomer does: the script, a free port, health."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

# The console script installed next to this interpreter by `pip install -e .`.
_SCRIPT = Path(sys.executable).with_name("availability")
AVAILABILITY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "app.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_healthy(proc: subprocess.Popen[str], port: int, seconds: float) -> None:
    """Wait until the started service answers ``/health`` 200; fail with its stderr if not."""
    deadline = time.monotonic() + seconds
    health = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    assert health is not None and health.status_code == 200, (
        proc.stderr.read() if proc.stderr else ""
    )
