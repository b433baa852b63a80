"""`availability serve` with the embedded PostgreSQL stops that server on SIGTERM too.

uvicorn handles SIGTERM, shuts down, then re-raises it; with the default action the
process would die there and leave the private PostgreSQL running (``docker stop``,
``kill``, a supervisor). Ctrl-C is covered by tests/test_demo_command.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.cli_process import AVAILABILITY, free_port, wait_healthy


def test_sigterm_stops_the_service_and_its_embedded_postgres(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {
        "AVAILABILITY_DATA_DIR": str(tmp_path / "data"),
        "AVAILABILITY_LOG_FORMAT": "json",
        "PORT": str(port),
    }
    proc = subprocess.Popen(
        [*AVAILABILITY, "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    postmaster = tmp_path / "data" / "pg" / "postmaster.pid"
    try:
        wait_healthy(proc, port, 90)
        assert postmaster.exists()  # the private server is running
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert "embedded_postgres.stopped" in err, err
    assert not postmaster.exists(), "PostgreSQL still running after SIGTERM"
